import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { DIST, PROJECT_ROOT } from '../../../shared/paths.js';

/** What `npm run build` precomputes of the Mesh: each source's schema, generated from its OpenAPI spec. */
export const MESH_ARTIFACTS = `${DIST}mesh-artifacts/`;
export const MESH_MANIFEST = `${MESH_ARTIFACTS}manifest.json`;

/**
 * A digest of everything the artifacts are made from: .meshrc.yaml, the specs, and the installed
 * packages (package-lock.json). Artifacts made from anything else are stale. (Kept apart from the Mesh
 * loader so that checking costs no Mesh import.)
 */
export function meshInputsDigest(): string {
  const hash = createHash('sha256');
  const specs = readdirSync(`${PROJECT_ROOT}schemas`)
    .filter((file) => file.endsWith('.yaml'))
    .sort()
    .map((file) => `schemas/${file}`);
  for (const file of ['.meshrc.yaml', 'package-lock.json', ...specs]) hash.update(`${file}\0`).update(readFileSync(`${PROJECT_ROOT}${file}`)).update('\0');
  return hash.digest('hex');
}

export function artifactsAreCurrent(): boolean {
  try {
    return (JSON.parse(readFileSync(MESH_MANIFEST, 'utf8')) as { inputs?: string }).inputs === meshInputsDigest();
  } catch {
    return false;
  }
}

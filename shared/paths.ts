import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/**
 * Where things are, whether this code runs from its TypeScript sources (tests, tsx) or from the build
 * in dist/ (`npm start`, production): this module is shared/paths.ts or dist/shared/paths.js.
 */
const fromBuild = import.meta.url.endsWith('.js');

/** The project's root: package.json, .meshrc.yaml, schemas/, dist/. */
export const PROJECT_ROOT = fileURLToPath(new URL(fromBuild ? '../../' : '../', import.meta.url));

/** Where the running code's modules are (the project root, or dist/), and the extension they have. */
export const CODE_ROOT = fileURLToPath(new URL('../', import.meta.url));
export const CODE_EXTENSION = fromBuild ? '.js' : '.ts';

/** The build's output. */
export const DIST = `${PROJECT_ROOT}dist/`;

/** The version in package.json (`service.version` of the traces). */
export function projectVersion(): string {
  return (JSON.parse(readFileSync(`${PROJECT_ROOT}package.json`, 'utf8')) as { version: string }).version;
}

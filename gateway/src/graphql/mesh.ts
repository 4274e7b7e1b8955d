import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { isAbsolute, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { processConfig } from '@graphql-mesh/config';
import { getMesh, type MeshInstance } from '@graphql-mesh/runtime';
import { FsStoreStorageAdapter, InMemoryStoreStorageAdapter, MeshStore } from '@graphql-mesh/store';
import type { YamlConfig } from '@graphql-mesh/types';
import { parse } from 'yaml';
import type { Logger } from '../observability/logger.js';
import { CODE_EXTENSION, CODE_ROOT, PROJECT_ROOT } from '../paths.js';
import { UPSTREAM_NAMES, UPSTREAMS, type UpstreamUrls } from '../upstreams.js';
import { artifactsAreCurrent, MESH_ARTIFACTS, MESH_MANIFEST, meshInputsDigest } from './mesh-artifacts.js';
import type { MeshFetch } from './mesh-fetch.js';
import { routeMeshLogsTo } from './mesh-logger.js';

/** A stored artifact, read as data; missing is what Mesh's store expects of a module it cannot find. */
async function readArtifact<T>(path: string): Promise<T> {
  try {
    return JSON.parse(await readFile(path, 'utf8')) as T;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') throw new Error(`Cannot find module '${path}'`, { cause: error });
    throw error;
  }
}

/**
 * Mesh loads modules by the paths .meshrc.yaml gives (relative to the project, written as the .ts
 * sources): they are taken from wherever this code runs (the sources, or their build in dist/).
 */
function importFn<T>(path: string): Promise<T> {
  if (path.endsWith('.json') && isAbsolute(path)) return readArtifact<T>(path);
  if (!path.startsWith('.')) return import(path) as Promise<T>;
  return import(pathToFileURL(resolve(CODE_ROOT, path.replace(/\.ts$/, CODE_EXTENSION))).href) as Promise<T>;
}

/**
 * `use`: the build's artifacts when they are current; otherwise the schema is generated at start-up
 * (slower, never stale). `write`: generate, and store the artifacts for later starts (the build).
 */
export type MeshArtifacts = 'use' | 'write';

function storeFor(artifacts: MeshArtifacts, logger: Logger): MeshStore {
  if (artifacts === 'write') {
    rmSync(MESH_ARTIFACTS, { recursive: true, force: true });
    mkdirSync(MESH_ARTIFACTS, { recursive: true });
  } else if (!artifactsAreCurrent()) {
    logger.warn('the prebuilt Mesh artifacts are missing or stale (.meshrc.yaml, schemas/ or packages changed): generating the schema at start-up; `npm run build` prebuilds it');
    return new MeshStore(MESH_ARTIFACTS, new InMemoryStoreStorageAdapter(), { readonly: false, validate: false });
  }
  const adapter = new FsStoreStorageAdapter({ cwd: MESH_ARTIFACTS, importFn, fileType: 'json' });
  return new MeshStore(MESH_ARTIFACTS, adapter, { readonly: artifacts === 'use', validate: false });
}

/**
 * Builds the Mesh from .meshrc.yaml in this process (no @graphql-mesh/cli at run time). Each source's
 * endpoint is the gateway's configured URL for its upstream, so REST and GraphQL always agree, and every
 * call goes through `fetchFn` (the upstream client).
 */
export async function loadMesh(upstreams: UpstreamUrls, fetchFn: MeshFetch, logger: Logger, artifacts: MeshArtifacts = 'use'): Promise<MeshInstance> {
  const config = parse(readFileSync(`${PROJECT_ROOT}.meshrc.yaml`, 'utf8')) as YamlConfig.Config;
  for (const source of config.sources) {
    const upstream = UPSTREAM_NAMES.find((name) => UPSTREAMS[name].meshSource === source.name);
    const openapi = (source.handler as { openapi?: { endpoint?: string } }).openapi;
    if (!upstream || !openapi) throw new Error(`.meshrc.yaml: source ${source.name} has no upstream`);
    // Stored artifacts keep the endpoint they were built with; the configured one wins at run time.
    openapi.endpoint = upstreams[upstream];
  }
  routeMeshLogsTo(logger);
  const processed = await processConfig(config, { dir: PROJECT_ROOT, store: storeFor(artifacts, logger), importFn, throwOnInvalidConfig: true });
  const mesh = await getMesh({ ...processed, fetchFn: fetchFn as never });
  if (artifacts === 'write') writeFileSync(MESH_MANIFEST, JSON.stringify({ inputs: meshInputsDigest() }));
  return mesh;
}

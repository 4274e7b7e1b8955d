import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { processConfig } from '@graphql-mesh/config';
import { getMesh, type MeshInstance } from '@graphql-mesh/runtime';
import { InMemoryStoreStorageAdapter, MeshStore } from '@graphql-mesh/store';
import type { YamlConfig } from '@graphql-mesh/types';
import { parse } from 'yaml';
import type { Logger } from '../observability/logger.js';
import { UPSTREAM_NAMES, UPSTREAMS, type UpstreamUrls } from '../upstreams.js';
import type { MeshFetch } from './mesh-fetch.js';
import { routeMeshLogsTo } from './mesh-logger.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

/**
 * Builds the Mesh from .meshrc.yaml in this process (no @graphql-mesh/cli at run time). Each source's
 * endpoint is the gateway's configured URL for its upstream, so REST and GraphQL always agree, and every
 * call goes through `fetchFn` (the upstream client).
 */
export async function loadMesh(upstreams: UpstreamUrls, fetchFn: MeshFetch, logger: Logger): Promise<MeshInstance> {
  const config = parse(readFileSync(`${ROOT}.meshrc.yaml`, 'utf8')) as YamlConfig.Config;
  for (const source of config.sources) {
    const upstream = UPSTREAM_NAMES.find((name) => UPSTREAMS[name].meshSource === source.name);
    const openapi = (source.handler as { openapi?: { endpoint?: string } }).openapi;
    if (!upstream || !openapi) throw new Error(`.meshrc.yaml: source ${source.name} has no upstream`);
    openapi.endpoint = upstreams[upstream];
  }
  routeMeshLogsTo(logger);
  const processed = await processConfig(config, {
    dir: ROOT,
    // Mesh's default store reads prebuilt `mesh build` artifacts when NODE_ENV=production; the gateway
    // always generates the schema from the specs at start-up, in every environment.
    store: new MeshStore(resolve(ROOT, '.mesh'), new InMemoryStoreStorageAdapter(), { readonly: false, validate: false }),
    // Mesh hands relative module paths from .meshrc.yaml as they are written: they are relative to the repo root.
    importFn: <T>(path: string) => import(path.startsWith('.') ? pathToFileURL(resolve(ROOT, path)).href : path) as Promise<T>,
    throwOnInvalidConfig: true,
  });
  return getMesh({ ...processed, fetchFn: fetchFn as never });
}

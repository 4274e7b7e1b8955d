import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { isAbsolute, resolve } from 'node:path';
import InMemoryLRUCache from '@graphql-mesh/cache-inmemory-lru';
import StitchingMerger from '@graphql-mesh/merger-stitching';
import { getMesh } from '@graphql-mesh/runtime';
import { FsStoreStorageAdapter, InMemoryStoreStorageAdapter, MeshStore, PredefinedProxyOptions } from '@graphql-mesh/store';
import FilterSchemaTransform from '@graphql-mesh/transform-filter-schema';
import PrefixTransform from '@graphql-mesh/transform-prefix';
import PruneTransform from '@graphql-mesh/transform-prune';
import { processDirectives } from '@graphql-mesh/transport-rest';
import type { ImportFn, MeshHandler, MeshHandlerOptions, MeshPubSub, MeshSource, MeshTransform, MeshTransformLibrary, YamlConfig } from '@graphql-mesh/types';
import { PubSub, resolveAdditionalResolvers } from '@graphql-mesh/utils';
import { parse as parseGraphQL, type GraphQLSchema } from 'graphql';
import { parse } from 'yaml';
import type { Logger } from '../observability/logger.js';
import type { RawSource } from './contract/source.js';
import { PROJECT_ROOT } from '../../../shared/paths.js';
import { UPSTREAM_NAMES, UPSTREAMS, type UpstreamUrls } from '../../../shared/upstreams.js';
import { artifactsAreCurrent, MESH_ARTIFACTS, MESH_MANIFEST, meshInputsDigest } from './mesh-artifacts.js';
import type { MeshFetch } from './mesh-fetch.js';
import meshLogger, { routeMeshLogsTo } from './library-logs.js';

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
 * The modules .meshrc.yaml names (its additionalResolvers), imported by name rather than by the path it
 * gives: the gateway's bundle holds them once, with the one copy of everything they import (the error
 * catalogue's classes among them), where a path would load a second.
 */
export const MESHRC_MODULES: Readonly<Record<string, () => Promise<unknown>>> = {
  './gateway/src/graphql/contract/resolvers.ts': () => import('./contract/resolvers.js'),
};

/** How Mesh loads modules: its stored artifacts as data, the modules .meshrc.yaml names from the table above, packages by name. */
const importFn: ImportFn = <T>(path: string): Promise<T> => {
  if (path.endsWith('.json') && isAbsolute(path)) return readArtifact<T>(path);
  const named = MESHRC_MODULES[path];
  if (named) return named() as Promise<T>;
  if (!path.startsWith('.') && !isAbsolute(path)) return import(path) as Promise<T>;
  return Promise.reject(new Error(`.meshrc.yaml names ${path}, which the gateway does not load (MESHRC_MODULES in gateway/src/graphql/mesh.ts)`));
};

/**
 * `use`: the build's artifacts when they are current; otherwise the schema is generated at start-up
 * (slower, never stale). `write`: generate, and store the artifacts for later starts (the build).
 */
export type MeshArtifacts = 'use' | 'write';

/** Where the sources' schemas come from: the build's artifacts as they are, or generated from the specs. */
type SchemaOrigin = 'prebuilt' | 'generated';

function storeFor(artifacts: MeshArtifacts, logger: Logger): { store: MeshStore; origin: SchemaOrigin } {
  if (artifacts === 'write') {
    rmSync(MESH_ARTIFACTS, { recursive: true, force: true });
    mkdirSync(MESH_ARTIFACTS, { recursive: true });
  } else if (!artifactsAreCurrent()) {
    logger.warn('the prebuilt Mesh artifacts are missing or stale (.meshrc.yaml, schemas/ or packages changed): generating the schema at start-up; `npm run build` prebuilds it');
    return { store: new MeshStore(MESH_ARTIFACTS, new InMemoryStoreStorageAdapter(), { readonly: false, validate: false }), origin: 'generated' };
  }
  const adapter = new FsStoreStorageAdapter({ cwd: MESH_ARTIFACTS, importFn, fileType: 'json' });
  return { store: new MeshStore(MESH_ARTIFACTS, adapter, { readonly: artifacts === 'use', validate: false }), origin: artifacts === 'use' ? 'prebuilt' : 'generated' };
}

/**
 * A source whose schema the build generated: read from the artifacts and made executable the way
 * @graphql-mesh/openapi does it (its HTTP directives), without loading the OpenAPI-to-GraphQL generator
 * (JSON Schema tooling, Ajv, graphql-compose) that only the build needs.
 */
class PrebuiltOpenAPISource implements MeshHandler {
  private readonly schema: { get(): Promise<GraphQLSchema> };
  private readonly config: YamlConfig.OpenapiHandler;
  private readonly pubsub: MeshPubSub;
  private readonly logger: MeshHandlerOptions<YamlConfig.OpenapiHandler>['logger'];

  constructor(options: MeshHandlerOptions<YamlConfig.OpenapiHandler>) {
    this.schema = options.store.proxy('schemaWithAnnotations', PredefinedProxyOptions.GraphQLSchemaWithDiffing);
    this.config = options.config;
    this.pubsub = options.pubsub as MeshPubSub;
    this.logger = options.logger;
  }

  async getMeshSource({ fetchFn }: Parameters<MeshHandler['getMeshSource']>[0]): Promise<MeshSource> {
    const schema = await this.schema.get();
    return { schema: processDirectives(schema, { ...this.config, pubsub: this.pubsub, logger: this.logger, globalFetch: fetchFn }) };
  }
}

/**
 * The transforms .meshrc.yaml may name. The gateway puts its Mesh together itself from the parsed file
 * instead of through `@graphql-mesh/config`, whose toolchain (code-file loaders, Babel, …) serving never
 * needs: about 50 MB of memory and a third of a second at every start.
 */
const TRANSFORMS: Readonly<Record<string, MeshTransformLibrary>> = {
  prefix: PrefixTransform as unknown as MeshTransformLibrary,
  filterSchema: FilterSchemaTransform as unknown as MeshTransformLibrary,
  prune: PruneTransform as unknown as MeshTransformLibrary,
};

type TransformConfig = Readonly<Record<string, unknown>>;

/**
 * What the GraphQL face uses of the Mesh: the stitched schema, each source's generated schema (the
 * resolvers call their root fields), and how to let it go. This module is the only one that knows the Mesh
 * v0 runtime's API: replacing it (Mesh Compose, or clients generated from shared/api) changes this file.
 */
export interface MeshRuntime {
  readonly schema: GraphQLSchema;
  readonly rawSources: readonly RawSource[];
  destroy(): void;
}

/**
 * Builds the Mesh from .meshrc.yaml in this process (no @graphql-mesh/cli at run time). Each source's
 * endpoint is the gateway's configured URL for its upstream, so REST and GraphQL always agree, and every
 * call goes through `fetchFn` (the upstream client).
 */
export async function loadMesh(upstreams: UpstreamUrls, fetchFn: MeshFetch, logger: Logger, artifacts: MeshArtifacts = 'use'): Promise<MeshRuntime> {
  const config = parse(readFileSync(`${PROJECT_ROOT}.meshrc.yaml`, 'utf8')) as YamlConfig.Config;
  routeMeshLogsTo(logger);
  const { store, origin } = storeFor(artifacts, logger);
  const Handler = origin === 'prebuilt' ? PrebuiltOpenAPISource : ((await import('@graphql-mesh/openapi')).default as unknown as typeof PrebuiltOpenAPISource);
  const pubsub = new PubSub();
  const cache = new InMemoryLRUCache({ pubsub });
  const transformsOf = (apiName: string, configs: readonly TransformConfig[] = []): MeshTransform[] =>
    configs.map((entry) => {
      const [name, transformConfig] = Object.entries(entry)[0] ?? [];
      const Transform = name === undefined ? undefined : TRANSFORMS[name];
      if (!Transform) throw new Error(`.meshrc.yaml: the gateway does not load the transform "${name ?? ''}"`);
      return new Transform({ apiName, config: transformConfig, baseDir: PROJECT_ROOT, cache, pubsub, importFn, logger: meshLogger });
    });

  const sources = config.sources.map((source) => {
    const upstream = UPSTREAM_NAMES.find((name) => UPSTREAMS[name].meshSource === source.name);
    const openapi = (source.handler as { openapi?: YamlConfig.OpenapiHandler }).openapi;
    if (!upstream || !openapi) throw new Error(`.meshrc.yaml: source ${source.name} is not an OpenAPI source of a known upstream`);
    const handler = new Handler({
      name: source.name,
      // Stored artifacts keep the endpoint they were built with; the configured one wins at run time.
      config: { ...openapi, endpoint: upstreams[upstream] },
      baseDir: PROJECT_ROOT,
      cache,
      pubsub,
      store: store.child('sources').child(source.name),
      logger: meshLogger.child({ source: source.name }),
      importFn,
    });
    return { name: source.name, handler, transforms: transformsOf(source.name, source.transforms as TransformConfig[] | undefined) };
  });
  const typeDefs = ([] as string[]).concat((config.additionalTypeDefs as string | string[] | undefined) ?? []);
  const mesh = await getMesh({
    sources,
    transforms: transformsOf('', config.transforms as TransformConfig[] | undefined),
    additionalTypeDefs: typeDefs.map((file) => parseGraphQL(readFileSync(resolve(PROJECT_ROOT, file), 'utf8'))),
    additionalResolvers: await resolveAdditionalResolvers(PROJECT_ROOT, config.additionalResolvers ?? [], importFn, pubsub),
    cache,
    pubsub,
    merger: new StitchingMerger({ cache, pubsub, logger: meshLogger.child({ merger: 'stitching' }), store: store.child('stitching') }),
    logger: meshLogger,
    fetchFn: fetchFn as never,
  });
  if (artifacts === 'write') writeFileSync(MESH_MANIFEST, JSON.stringify({ inputs: meshInputsDigest() }));
  return mesh;
}

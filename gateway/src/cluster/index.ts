import type { GatewayConfig } from '../config.js';
import type { Logger } from '../observability/logger.js';
import type { GatewayMetrics, SharedCacheName } from '../observability/metrics.js';
import type { GatewayPlugin } from '../pipeline/pipeline.js';
import { LocalInvalidations, RedisInvalidations, type BusStatus, type Invalidations } from './bus.js';
import type { EntryBounds, SharedEntries } from './entries.js';
import type { RedisConnection, SharedRedis } from './redis.js';

export type { EntryBounds, EntryOwner, SharedEntries } from './entries.js';
export { isCurrent, isStamp, stampOf, type Change, type Generations, type InvalidationListener, type Invalidations, type Stamp } from './bus.js';
export { isHeader } from './entries.js';

/**
 * What the replicas of a cluster share, as one capability: with REDIS_URL, the one Redis connection
 * owner, the invalidation bus through it and a bounded store per cache; without, the bus of one process
 * and no store (each cache keeps its local layer only). Its plugin closes what it opened.
 */
export interface SharedState {
  /** Absent without REDIS_URL. */
  readonly redis: SharedRedis | undefined;
  readonly invalidations: Invalidations;
  /** The entries of `cache` (or of one `part` of it) in Redis, within `bounds`; undefined without REDIS_URL. */
  entries(cache: SharedCacheName, bounds: EntryBounds, part?: string): SharedEntries | undefined;
  /** What `/ready`'s details say. */
  details(): { readonly redis?: Readonly<Record<RedisConnection, 'up' | 'down'>>; readonly bus: BusStatus };
  readonly plugin: GatewayPlugin;
}

/** `{ shared: entries }` when there are shared entries: a cache's options with its Redis layer, or without. */
export function sharedLayer(entries: SharedEntries | undefined): { readonly shared?: SharedEntries } {
  return entries ? { shared: entries } : {};
}

/** Opens the shared state the configuration asks for. The Redis client (ioredis) is only loaded with REDIS_URL. */
export async function sharedState(config: GatewayConfig, logger: Logger, metrics: GatewayMetrics): Promise<SharedState> {
  metrics.setBusListening(config.redis === undefined);
  if (!config.redis) {
    const invalidations = new LocalInvalidations();
    return { redis: undefined, invalidations, entries: () => undefined, details: () => ({ bus: invalidations.status }), plugin: { name: 'shared-state' } };
  }
  const [{ SharedRedis }, { SharedEntries }] = await Promise.all([import('./redis.js'), import('./entries.js')]);
  const redis = new SharedRedis(config.redis, { logger, metrics });
  const invalidations = new RedisInvalidations(redis, { logger, metrics });
  return {
    redis,
    invalidations,
    entries: (cache, bounds, part) => new SharedEntries(redis, cache, bounds, part),
    details: () => ({ redis: redis.status, bus: invalidations.status }),
    plugin: {
      name: 'shared-state',
      async onClose() {
        await invalidations.close();
        await redis.close();
      },
    },
  };
}

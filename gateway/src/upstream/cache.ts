import type { Writable } from 'node:stream';
import { cacheStores, interceptors, type Dispatcher } from 'undici';
import { LRUCache } from 'lru-cache';
import { IDENTITY_HEADERS } from './interceptors/forwarding.js';
import { PassThroughHandler, type Controller, type Headers } from './interceptors/handler.js';

// undici's cache store interface, as its memory store implements it.
type MemoryCacheStore = InstanceType<typeof cacheStores.MemoryCacheStore>;
type CacheStore = Pick<MemoryCacheStore, 'get' | 'createWriteStream' | 'delete'>;
type CacheKey = Parameters<MemoryCacheStore['get']>[0];
type CacheValue = Parameters<MemoryCacheStore['createWriteStream']>[1];

export interface UpstreamCacheOptions {
  /** The memory all cached answers may take together. */
  readonly maxBytes: number;
  /** The largest answer stored. */
  readonly maxEntryBytes: number;
  /** Each lookup, by the origin it was for: found fresh or stale (`hit`), or not (`miss`). */
  readonly onLookup?: (origin: string, result: 'hit' | 'miss') => void;
  /** After every stored answer of `origin` was dropped (a change through the gateway). */
  readonly onInvalidate?: (origin: string) => void;
}

/** Most entries kept (each at least a few hundred bytes: maxBytes bounds them first). */
const MAX_ENTRIES = 20_000;

/**
 * The shared HTTP cache of upstream answers (RFC 9111), one store for every upstream: undici's memory
 * store, within a byte bound, holding 2xx answers only (a redirect or an error is never replayed to a
 * face that treats it differently) and an answer to an identified caller only when it says `public`,
 * with the keys of each origin tracked so that a change made through the gateway can drop all of that
 * upstream's answers at once.
 */
export class UpstreamCache implements CacheStore {
  private readonly store: CacheStore;
  /** `origin path` → its key, least recently stored first out. */
  private readonly keys = new LRUCache<string, CacheKey>({ max: MAX_ENTRIES });

  constructor(private readonly options: UpstreamCacheOptions) {
    this.store = new cacheStores.MemoryCacheStore({ maxSize: options.maxBytes, maxEntrySize: options.maxEntryBytes, maxCount: MAX_ENTRIES });
  }

  get(key: CacheKey): ReturnType<CacheStore['get']> {
    const found = this.store.get(key);
    if (found instanceof Promise) return found.then((value) => this.looked(key, value));
    return this.looked(key, found);
  }

  private looked<T>(key: CacheKey, value: T): T {
    this.options.onLookup?.(key.origin, value === undefined ? 'miss' : 'hit');
    return value;
  }

  createWriteStream(key: CacheKey, value: CacheValue): Writable | undefined {
    if (value.statusCode < 200 || value.statusCode > 299) return undefined;
    // An answer to a call that says who is calling is that caller's, unless the upstream said `public`.
    // RFC 9111 3.5 would take `s-maxage` or `must-revalidate` as well, but it speaks of Authorization
    // alone: the gateway adds the identity itself (X-User-ID), which no upstream would have to Vary on.
    if (!value.cacheControlDirectives?.public && IDENTITY_HEADERS.some((name) => key.headers?.[name] !== undefined)) return undefined;
    this.keys.set(`${key.origin} ${key.path}`, { origin: key.origin, path: key.path, method: key.method });
    return this.store.createWriteStream(key, value);
  }

  delete(key: CacheKey): void | Promise<void> {
    this.keys.delete(`${key.origin} ${key.path}`);
    return this.store.delete(key);
  }

  /** Drops every stored answer of `origin`. */
  invalidate(origin: string): void {
    for (const [id, key] of this.keys.entries()) {
      if (key.origin !== origin) continue;
      this.keys.delete(id);
      void this.store.delete(key);
    }
    this.options.onInvalidate?.(origin);
  }
}

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE']);

class InvalidatingHandler extends PassThroughHandler {
  constructor(
    next: Dispatcher.DispatchHandler,
    private readonly invalidate: () => void,
  ) {
    super(next);
  }

  override onResponseStart(controller: Controller, statusCode: number, headers: Headers, statusMessage?: string): void {
    if (statusCode < 400) this.invalidate();
    super.onResponseStart(controller, statusCode, headers, statusMessage);
  }
}

/**
 * The cache in front of one upstream: a change that succeeded (an unsafe method answered below 400)
 * drops all of that upstream's stored answers — a catalogue edit shows at once on every page of this
 * instance, not only at the URI it changed (RFC 9111 4.4 asks for the URI, at least); then the answer
 * is looked up (GETs and HEADs, shared-cache rules: `private` and `no-store` are never stored, an
 * answer to a call carrying an identity only when `public` says so).
 */
export function cacheInterceptors(cache: UpstreamCache, origin: string): Dispatcher.DispatcherComposeInterceptor[] {
  const invalidation: Dispatcher.DispatcherComposeInterceptor = (dispatch) => (options, handler) =>
    SAFE_METHODS.has(options.method) ? dispatch(options, handler) : dispatch(options, new InvalidatingHandler(handler, () => cache.invalidate(origin)));
  // compose() order: the last is met first.
  return [interceptors.cache({ store: cache, methods: ['GET', 'HEAD'], type: 'shared' }), invalidation];
}

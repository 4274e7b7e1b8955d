import { createHash } from 'node:crypto';
import { Writable } from 'node:stream';
import { cacheStores, interceptors, type Dispatcher } from 'undici';
import { LRUCache } from 'lru-cache';
import { isCurrent, isHeader, isStamp, stampOf, type Generations, type Invalidations, type SharedEntries, type Stamp } from '../cluster/index.js';
import type { UpstreamName } from '../../../shared/upstreams.js';
import { callOf, type UpstreamCall } from './call.js';
import type { CacheLayer } from '../observability/attempts.js';
import { IDENTITY_HEADERS } from './interceptors/forwarding.js';

// undici's cache store interface, as its memory store implements it.
type MemoryCacheStore = InstanceType<typeof cacheStores.MemoryCacheStore>;
type CacheStore = Pick<MemoryCacheStore, 'get' | 'createWriteStream' | 'delete'>;
type CacheKey = Parameters<MemoryCacheStore['get']>[0];
type CacheValue = Parameters<MemoryCacheStore['createWriteStream']>[1];

export interface UpstreamCacheOptions {
  /** The memory all cached answers may take together (and, with REDIS_URL, their copies in Redis). */
  readonly maxBytes: number;
  /** The largest answer stored. */
  readonly maxEntryBytes: number;
  /** The upstream an origin is (the cache's keys are origins). */
  readonly upstreamOf: (origin: string) => UpstreamName | undefined;
  /** The bus every replica hears (this process's own without REDIS_URL): changes, and whether to trust what is held. */
  readonly invalidations: Invalidations;
  /** The layer in Redis every replica shares; absent without REDIS_URL. */
  readonly shared?: SharedEntries;
  /** Each lookup, by the upstream it was for and the layer that answered: found fresh or stale (`hit`), or not (`miss`). */
  readonly onLookup?: (upstream: UpstreamName, layer: CacheLayer, result: 'hit' | 'miss') => void;
}

/** Most entries kept (each at least a few hundred bytes: maxBytes bounds them first). */
export const MAX_ENTRIES = 20_000;

/** An answer as the shared layer keeps it: undici's description of it, the method, its stamp, and the body. */
interface SharedAnswer {
  readonly value: CacheValue;
  readonly method: string;
  readonly stamp: Stamp;
  readonly body: Buffer;
}

/** A Vary'd request header as Redis keeps it: a digest, so a credential an answer varies on (Authorization, Cookie) is never written there. */
const digestOf = (asked: unknown) => createHash('sha256').update(String(asked)).digest('base64url');

/**
 * [4-byte length of the head][head: JSON of value, method, stamp][body]. The value's Vary'd request
 * headers are digests: whoever reads Redis (a backup, a replica of it, a monitoring tool) finds no
 * caller's bearer token there.
 */
function encode(answer: SharedAnswer): Buffer {
  const { vary } = answer.value;
  const value = vary ? { ...answer.value, vary: Object.fromEntries(Object.entries(vary).map(([name, asked]) => [name, asked === null ? null : digestOf(asked)])) } : answer.value;
  const head = Buffer.from(JSON.stringify({ value, method: answer.method, stamp: answer.stamp }));
  const length = Buffer.alloc(4);
  length.writeUInt32BE(head.length);
  return Buffer.concat([length, head, answer.body]);
}

const isObject = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value);

/**
 * Whether `value` is undici's description of an answer, as its memory store asserts it and the faces
 * send it on: numbers for the status and the times, a status message, headers a response may carry,
 * Vary'd request headers (one or more strings, or null for one that was absent).
 */
function isCacheValue(value: unknown): value is CacheValue {
  if (!isObject(value)) return false;
  const { statusCode, statusMessage, cachedAt, staleAt, deleteAt, headers, vary, etag, cacheControlDirectives } = value;
  return (
    [statusCode, cachedAt, staleAt, deleteAt].every(Number.isFinite) &&
    typeof statusMessage === 'string' &&
    isObject(headers) &&
    Object.entries(headers).every(([name, header]) => isHeader(name, header)) &&
    (vary === undefined || (isObject(vary) && Object.values(vary).every((asked) => asked === null || typeof asked === 'string' || (Array.isArray(asked) && asked.every((one) => typeof one === 'string'))))) &&
    (etag === undefined || typeof etag === 'string') &&
    (cacheControlDirectives === undefined || isObject(cacheControlDirectives))
  );
}

/** The answer in `raw`, or undefined for anything else found under its key (Redis holds what anyone wrote). */
function decode(raw: Buffer): SharedAnswer | undefined {
  try {
    const length = raw.readUInt32BE(0);
    const head = JSON.parse(raw.subarray(4, 4 + length).toString()) as Record<string, unknown>;
    if (typeof head.method !== 'string' || !isCacheValue(head.value) || !isStamp(head.stamp)) return undefined;
    return { value: head.value, method: head.method, stamp: head.stamp, body: raw.subarray(4 + length) };
  } catch {
    return undefined;
  }
}

/** Whether a shared answer's Vary'd request headers (digests) are the request's, as undici's memory store matches them. */
function varyMatches(key: CacheKey, vary: CacheValue['vary']): boolean {
  for (const [name, digest] of Object.entries(vary ?? {})) {
    const asked = key.headers?.[name] ?? null;
    if ((asked === null) !== (digest === null) || (asked !== null && digestOf(asked) !== digest)) return false;
  }
  return true;
}

/** A shared answer as this request found it: its Vary'd headers are the request's own (they matched), not their digests. */
function asFound(key: CacheKey, value: CacheValue): CacheValue {
  return value.vary ? { ...value, vary: Object.fromEntries(Object.keys(value.vary).map((name) => [name, key.headers?.[name] ?? null])) } : value;
}

/** Records a cached answer in its request's access line, as an attempt no upstream saw. */
function answered<T extends { readonly statusCode: number }>(call: UpstreamCall | undefined, service: UpstreamName, layer: CacheLayer, found: T, started: number): T {
  const attempts = call?.caller.attempts;
  attempts?.started();
  attempts?.ended({ service, status: found.statusCode, ms: Math.round((performance.now() - started) * 10) / 10, cache: layer });
  return found;
}

const idOf = (key: Pick<CacheKey, 'origin' | 'method' | 'path'>) => `${key.origin} ${key.method} ${key.path}`;

/** What the local layer holds of one `origin method path`: the key a change drops, and the bytes of what was stored under it. */
interface Held {
  readonly key: CacheKey;
  readonly bytes: number;
}

/**
 * The shared HTTP cache of upstream answers (RFC 9111), one store for every upstream, in two layers: this
 * process's (undici's memory store) and, with REDIS_URL, one in Redis that every replica reads and fills.
 * Both are bounded in bytes, hold 2xx answers only (a redirect or an error is never replayed to a face
 * that treats it differently) and an answer to an identified caller only when it says `public`. Every
 * answer is stamped with its upstream's generation at lookup time: a change through any replica bumps it
 * (the bus), so an answer made before it is never used again, here or anywhere, and one that was being
 * fetched as the change happened is not kept. While the bus is not heard, nothing cached is used.
 */
export class UpstreamCache implements CacheStore {
  private readonly local: CacheStore;
  /**
   * `origin method path` → what the local layer holds of it: what a change drops, and the bounds of the
   * layer (UPSTREAM_CACHE_MAX_BYTES, MAX_ENTRIES), least recently stored first out. undici's memory store
   * does not keep its own (7.x drops half of each path's answers when over, which is none of a path that
   * holds one): whatever leaves this list leaves the store.
   */
  private readonly keys: LRUCache<string, Held>;
  /** The call whose lookup is being made: undici's cache asks the store synchronously as the call is dispatched. */
  private calling: UpstreamCall | undefined;
  /**
   * The generations at each lookup (the bus's snapshot, kept as it is: its upstream's count is the stamp), until an answer to it is stored (a miss, or a stale hit revalidated): by the
   * request's own key (undici hands the store the same object for its lookup and its answer), not by path.
   * By path, a lookup made after a change replaced the stamp of another caller's made before it, and that
   * caller's answer, older than the change, was stored as current.
   */
  private readonly lookedUp = new WeakMap<CacheKey, Generations>();

  constructor(private readonly options: UpstreamCacheOptions) {
    this.local = new cacheStores.MemoryCacheStore({ maxSize: options.maxBytes, maxEntrySize: options.maxEntryBytes, maxCount: MAX_ENTRIES });
    this.keys = new LRUCache<string, Held>({
      max: MAX_ENTRIES,
      maxSize: options.maxBytes,
      sizeCalculation: (held) => Math.max(1, held.bytes),
      dispose: (held, _id, reason) => reason === 'evict' && void this.local.delete(held.key),
    });
    options.invalidations.onInvalidate((upstream) => this.dropLocal((origin) => options.upstreamOf(origin) === upstream));
    // What is held here may have missed a change while the bus was not heard.
    options.invalidations.onTrust((trusted) => trusted || this.dropLocal(() => true));
  }

  /** Dispatches a call (undici's cache interceptor looks it up on the way): a hit is in its request's access line. */
  lookingUp(dispatch: Dispatcher['dispatch'], options: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler): boolean {
    this.calling = callOf(options);
    try {
      return dispatch(options, handler);
    } finally {
      this.calling = undefined;
    }
  }

  get(key: CacheKey): ReturnType<CacheStore['get']> {
    const upstream = this.options.upstreamOf(key.origin);
    if (!upstream || !this.options.invalidations.trusted) return undefined;
    const call = this.calling;
    this.lookedUp.set(key, this.options.invalidations.generations());
    const found = this.local.get(key) as Awaited<ReturnType<CacheStore['get']>>;
    this.options.onLookup?.(upstream, 'local', found ? 'hit' : 'miss');
    if (found) return answered(call, upstream, 'local', found, performance.now());
    return this.options.shared ? this.sharedGet(this.options.shared, key, upstream, call) : undefined;
  }

  /** The answer the shared layer holds for `key`, when it is still current; kept locally too. */
  private async sharedGet(shared: SharedEntries, key: CacheKey, upstream: UpstreamName, call: UpstreamCall | undefined): Promise<Awaited<ReturnType<CacheStore['get']>>> {
    const started = performance.now();
    const raw = await shared.get(idOf(key));
    const answer = raw ? decode(raw) : undefined;
    const usable =
      answer !== undefined &&
      this.options.invalidations.trusted &&
      isCurrent(answer.stamp, this.options.invalidations.generations()) &&
      answer.method === key.method &&
      answer.value.deleteAt > Date.now() &&
      varyMatches(key, answer.value.vary);
    this.options.onLookup?.(upstream, 'shared', usable ? 'hit' : 'miss');
    if (!usable) return undefined;
    const value = asFound(key, answer.value);
    const local = this.local.createWriteStream(key, value);
    if (local) {
      local.write(answer.body);
      this.commit(idOf(key), key, local, answer.body.length, answer.stamp);
    }
    return answered(call, upstream, 'shared', { ...value, cacheControlDirectives: value.cacheControlDirectives ?? {}, body: answer.body }, started);
  }

  createWriteStream(key: CacheKey, value: CacheValue): Writable | undefined {
    if (value.statusCode < 200 || value.statusCode > 299) return undefined;
    // An answer to a call that says who is calling is that caller's, unless the upstream said `public`.
    // RFC 9111 3.5 would take `s-maxage` or `must-revalidate` as well, but it speaks of Authorization
    // alone: the gateway adds the identity itself (X-User-ID), which no upstream would have to Vary on.
    if (!value.cacheControlDirectives?.public && IDENTITY_HEADERS.some((name) => key.headers?.[name] !== undefined)) return undefined;
    const id = idOf(key);
    const upstream = this.options.upstreamOf(key.origin);
    const lookedUp = this.lookedUp.get(key);
    const stamp = lookedUp && upstream ? stampOf(lookedUp, [upstream]) : undefined;
    this.lookedUp.delete(key);
    // A change since the lookup (or a lookup never made): this answer may predate it.
    if (!stamp || !this.current(stamp)) return undefined;
    const local = this.local.createWriteStream(key, value);
    const { shared } = this.options;
    // Both layers: the body goes on to the local store as it comes, and to Redis whole at the end.
    const chunks: Buffer[] = [];
    let bytes = 0;
    return new Writable({
      write(chunk: Buffer, _encoding, done) {
        local?.write(chunk);
        bytes += chunk.length;
        if (shared && bytes <= shared.bounds.maxEntryBytes) chunks.push(chunk);
        done();
      },
      final: (done) => {
        // A change heard while the body was coming: what came may predate it. Kept nowhere.
        if (!this.current(stamp)) {
          local?.destroy();
          return done();
        }
        if (local) this.commit(id, key, local, bytes, stamp);
        if (shared && bytes <= shared.bounds.maxEntryBytes) shared.set(id, encode({ value, method: key.method, stamp, body: Buffer.concat(chunks) }), value.deleteAt - Date.now());
        done();
      },
      destroy(error, done) {
        local?.destroy(error ?? undefined);
        done(error);
      },
    });
  }

  delete(key: CacheKey): void | Promise<void> {
    this.keys.delete(idOf(key));
    return this.local.delete(key);
  }

  /** Whether an answer stamped `stamp` may be used or kept now: the bus is heard and its upstream has not changed since. */
  private current(stamp: Stamp): boolean {
    return this.options.invalidations.trusted && isCurrent(stamp, this.options.invalidations.generations());
  }

  /**
   * Ends a write to the local layer. Once the store has it, it is tracked (a change drops it; the oldest
   * go first past the layer's bounds), unless a change came meanwhile: then it is dropped at once.
   */
  private commit(id: string, key: CacheKey, local: Writable, bytes: number, stamp: Stamp): void {
    local.once('finish', () => {
      const held = { origin: key.origin, path: key.path, method: key.method };
      if (!this.current(stamp)) {
        this.keys.delete(id);
        void this.local.delete(held);
        return;
      }
      // Answers that vary (Vary) share the id: their bytes add up.
      this.keys.set(id, { key: held, bytes: (this.keys.peek(id)?.bytes ?? 0) + bytes + id.length });
      // Larger than the whole layer: not kept.
      if (!this.keys.has(id)) void this.local.delete(held);
    });
    local.end();
  }

  /** Drops the locally held answers of the origins `which` picks. */
  private dropLocal(which: (origin: string) => boolean): void {
    for (const [id, held] of this.keys.entries()) {
      if (!which(held.key.origin)) continue;
      this.keys.delete(id);
      void this.local.delete(held.key);
    }
  }
}

/**
 * The cache in front of one upstream (a change outdates its answers: the changes interceptor tells the
 * bus): the answer is looked up (GETs and HEADs, shared-cache rules: `private` and `no-store` are never
 * stored, an answer to a call carrying an identity only when `public` says so).
 */
export function cacheInterceptors(cache: UpstreamCache): Dispatcher.DispatcherComposeInterceptor[] {
  const lookup: Dispatcher.DispatcherComposeInterceptor = (dispatch) => (options, handler) => cache.lookingUp(dispatch, options, handler);
  // compose() order: the last is met first.
  return [interceptors.cache({ store: cache, methods: ['GET', 'HEAD'], type: 'shared' }), lookup];
}

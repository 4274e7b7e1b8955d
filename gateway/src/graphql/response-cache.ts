import type { IncomingHttpHeaders } from 'node:http';
import { LRUCache } from 'lru-cache';
import type { CacheLayer } from '../observability/attempts.js';
import type { GraphQLOperation } from './contract/context.js';
import { isCurrent, isHeader, isStamp, stampOf, type Generations, type Invalidations, type SharedEntries, type Stamp } from '../cluster/index.js';
import { MAX_OPERATION_NAME_LENGTH } from './contract/context.js';
import type { UpstreamName } from '../../../shared/upstreams.js';

/** A whole GraphQL response, as sent the first time. */
export interface StoredResponse {
  readonly headers: readonly (readonly [string, string])[];
  readonly body: string;
  readonly storedAtMs: number;
  readonly expiresAtMs: number;
  readonly operation: GraphQLOperation | undefined;
  /** The generations of the upstreams it was made of: a change to one of them, through any replica, outdates it. */
  readonly stamp: Stamp;
}

/** A response as the execution offers it: what it was made of, not yet stamped. */
export interface OfferedResponse {
  readonly headers: readonly (readonly [string, string])[];
  readonly body: string;
  readonly operation: GraphQLOperation | undefined;
  readonly upstreams: ReadonlySet<UpstreamName>;
}


/**
 * Request headers Apollo's answer depends on besides the query (the media type it answers in, its
 * CSRF rule): they are part of the key, so a stored answer only meets a request Apollo would have
 * answered the same way.
 */
const KEY_HEADERS = ['accept', 'content-type', 'apollo-require-preflight', 'x-apollo-operation-name'] as const;

const SHAREABLE = /^public, max-age=(\d+)$/;

/** Most responses kept in each layer (the byte bound comes first for any real response). */
export const MAX_STORED_RESPONSES = 10_000;

export interface ResponseCacheOptions {
  readonly maxBytes: number;
  readonly maxEntryBytes: number;
  /** The bus every replica hears (this process's own without REDIS_URL). */
  readonly invalidations: Invalidations;
  /** The layer in Redis every replica shares; absent without REDIS_URL. */
  readonly shared?: SharedEntries;
  readonly onLookup?: (layer: CacheLayer, result: 'hit' | 'miss') => void;
  readonly now?: () => number;
}

const OPERATION_TYPES: readonly unknown[] = ['query', 'mutation', 'subscription'];

/** Whether `value` is what the response was reported to be: none, or a name as the gateway cuts it and a type. */
function isOperation(value: unknown): value is GraphQLOperation | undefined {
  if (value === undefined) return true;
  const { name, type } = (value ?? {}) as Record<string, unknown>;
  return typeof name === 'string' && name.length <= MAX_OPERATION_NAME_LENGTH && OPERATION_TYPES.includes(type);
}

/**
 * The stored response in `raw` (JSON written by a replica), or undefined for anything else: Redis holds
 * what anyone wrote, and the response is replayed as it says (its headers set, its operation counted).
 */
function decode(raw: Buffer): StoredResponse | undefined {
  try {
    const parsed = JSON.parse(raw.toString()) as Partial<StoredResponse>;
    const headers = parsed.headers as unknown;
    const pairs = Array.isArray(headers) && headers.every((pair) => Array.isArray(pair) && pair.length === 2 && isHeader(pair[0], pair[1]));
    if (typeof parsed.body !== 'string' || !pairs || !Number.isFinite(parsed.storedAtMs) || !Number.isFinite(parsed.expiresAtMs) || !isStamp(parsed.stamp) || !isOperation(parsed.operation)) return undefined;
    return parsed as StoredResponse;
  } catch {
    return undefined;
  }
}

/**
 * The gateway as the shared cache (RFC 9111) of its own GraphQL responses: an answer to an anonymous
 * request that the response's Cache-Control lets anyone keep (`public, max-age`, only ever set when
 * every upstream answer was public and nothing failed: cache-policy.ts) is answered again, whole, for
 * that long, without parsing, validating or executing anything; `Age` says how old it is. Two layers:
 * this process's, and with REDIS_URL one in Redis that every replica fills and reads. Each response is
 * stamped with the generations of the upstreams it was made of, as they were when it was looked up: a
 * change through any replica (the bus) outdates it everywhere, and one made as the change happened is not
 * kept. While the bus is not heard, nothing stored is used.
 */
export class GraphQLResponseCache {
  private readonly entries: LRUCache<string, StoredResponse>;
  private readonly now: () => number;

  constructor(private readonly options: ResponseCacheOptions) {
    this.now = options.now ?? Date.now;
    this.entries = new LRUCache<string, StoredResponse>({
      max: MAX_STORED_RESPONSES,
      maxSize: options.maxBytes,
      maxEntrySize: options.maxEntryBytes,
      sizeCalculation: (entry, key) => key.length + entry.body.length + 256,
      ttlAutopurge: false,
      // Every lookup reads the clock (no cached now): expiry is exact, and follows an injected clock.
      ttlResolution: 0,
      perf: { now: () => this.now() },
    });
    options.invalidations.onInvalidate((upstream) => {
      for (const [key, entry] of this.entries.entries()) if (upstream in entry.stamp.upstreams) this.entries.delete(key);
    });
    // What is held here may have missed a change while the bus was not heard.
    options.invalidations.onTrust((trusted) => trusted || this.entries.clear());
  }

  /** The key of a request: its method, query (GET) or body (POST), and the headers Apollo reads. */
  keyOf(method: string, headers: IncomingHttpHeaders, search: string, body: string): string {
    let key = `${method}\n${search}\n`;
    for (const name of KEY_HEADERS) key += `${headers[name] ?? ''}\n`;
    return key + body;
  }

  /** Today's generations: taken before a lookup, they are what a response made after it is stamped with. */
  generations(): Generations {
    return this.options.invalidations.generations();
  }

  /** The stored response for `key` that is still current, from this process's layer or the shared one, and where it was found. */
  async get(key: string): Promise<{ readonly stored: StoredResponse; readonly layer: CacheLayer } | undefined> {
    const { invalidations, shared, onLookup } = this.options;
    if (!invalidations.trusted) return undefined;
    const local = this.entries.get(key);
    const current = local !== undefined && isCurrent(local.stamp, invalidations.generations());
    onLookup?.('local', current ? 'hit' : 'miss');
    if (current) return { stored: local, layer: 'local' };
    if (!shared) return undefined;
    const raw = await shared.get(key);
    const found = raw ? decode(raw) : undefined;
    const usable = found !== undefined && invalidations.trusted && isCurrent(found.stamp, invalidations.generations()) && found.expiresAtMs > this.now();
    onLookup?.('shared', usable ? 'hit' : 'miss');
    if (!usable) return undefined;
    this.entries.set(key, found, { ttl: found.expiresAtMs - this.now() });
    return { stored: found, layer: 'shared' };
  }

  /** How old a stored response is, in whole seconds (its `Age`). */
  ageOf(stored: StoredResponse): number {
    return Math.max(0, Math.floor((this.now() - stored.storedAtMs) / 1000));
  }

  /**
   * Keeps a response when its Cache-Control says anyone may, for as long as it says, unless an upstream
   * it was made of changed since `lookedUpAt` (the generations before the lookup that missed).
   */
  offer(key: string, response: OfferedResponse, lookedUpAt: Generations = this.generations()): void {
    const cacheControl = response.headers.find(([name]) => name === 'cache-control')?.[1] ?? '';
    const maxAge = Number(SHAREABLE.exec(cacheControl)?.[1] ?? 0);
    if (maxAge < 1 || response.upstreams.size === 0 || !this.options.invalidations.trusted) return;
    const stamp = stampOf(lookedUpAt, response.upstreams);
    if (!isCurrent(stamp, this.generations())) return;
    const storedAtMs = this.now();
    const stored: StoredResponse = { headers: response.headers, body: response.body, operation: response.operation, stamp, storedAtMs, expiresAtMs: storedAtMs + maxAge * 1000 };
    this.entries.set(key, stored, { ttl: maxAge * 1000 });
    this.options.shared?.set(key, Buffer.from(JSON.stringify(stored)), maxAge * 1000);
  }
}

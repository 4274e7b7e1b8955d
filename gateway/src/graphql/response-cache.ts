import type { IncomingHttpHeaders } from 'node:http';
import { LRUCache } from 'lru-cache';
import type { GraphQLOperation } from './contract/context.js';
import type { UpstreamName } from '../../../shared/upstreams.js';

/** A whole GraphQL response, as sent the first time. */
export interface StoredResponse {
  readonly headers: readonly (readonly [string, string])[];
  readonly body: string;
  readonly storedAtMs: number;
  readonly operation: GraphQLOperation | undefined;
  /** What it was made of: a change to one of these upstreams through the gateway outdates it. */
  readonly upstreams: ReadonlySet<UpstreamName>;
}

/**
 * Request headers Apollo's answer depends on besides the query (the media type it answers in, its
 * CSRF rule): they are part of the key, so a stored answer only meets a request Apollo would have
 * answered the same way.
 */
const KEY_HEADERS = ['accept', 'content-type', 'apollo-require-preflight', 'x-apollo-operation-name'] as const;

const SHAREABLE = /^public, max-age=(\d+)$/;

export interface ResponseCacheOptions {
  readonly maxBytes: number;
  readonly maxEntryBytes: number;
  readonly now?: () => number;
}

/**
 * The gateway as the shared cache (RFC 9111) of its own GraphQL responses: an answer to an anonymous
 * request that the response's Cache-Control lets anyone keep (`public, max-age`, only ever set when
 * every upstream answer was public and nothing failed: cache-policy.ts) is answered again, whole, for
 * that long, without parsing, validating or executing anything; `Age` says how old it is. A change
 * through the gateway to an upstream it was made of drops it, as the upstream cache drops its answers.
 */
export class GraphQLResponseCache {
  private readonly entries: LRUCache<string, StoredResponse>;
  private readonly now: () => number;

  constructor(options: ResponseCacheOptions) {
    this.now = options.now ?? Date.now;
    this.entries = new LRUCache<string, StoredResponse>({
      maxSize: options.maxBytes,
      maxEntrySize: options.maxEntryBytes,
      sizeCalculation: (entry, key) => key.length + entry.body.length + 256,
      ttlAutopurge: false,
      // Every lookup reads the clock (no cached now): expiry is exact, and follows an injected clock.
      ttlResolution: 0,
      perf: { now: () => this.now() },
    });
  }

  /** The key of a request: its method, query (GET) or body (POST), and the headers Apollo reads. */
  keyOf(method: string, headers: IncomingHttpHeaders, search: string, body: string): string {
    let key = `${method}\n${search}\n`;
    for (const name of KEY_HEADERS) key += `${headers[name] ?? ''}\n`;
    return key + body;
  }

  get(key: string): StoredResponse | undefined {
    return this.entries.get(key);
  }

  /** How old a stored response is, in whole seconds (its `Age`). */
  ageOf(stored: StoredResponse): number {
    return Math.max(0, Math.floor((this.now() - stored.storedAtMs) / 1000));
  }

  /** Keeps a response when its Cache-Control says anyone may, for as long as it says. */
  offer(key: string, response: Omit<StoredResponse, 'storedAtMs'>): void {
    const cacheControl = response.headers.find(([name]) => name === 'cache-control')?.[1] ?? '';
    const maxAge = Number(SHAREABLE.exec(cacheControl)?.[1] ?? 0);
    if (maxAge < 1 || response.upstreams.size === 0) return;
    this.entries.set(key, { ...response, storedAtMs: this.now() }, { ttl: maxAge * 1000 });
  }

  /** Drops every response made with an answer of `upstream`. */
  invalidate(upstream: UpstreamName): void {
    for (const [key, entry] of this.entries.entries()) {
      if (entry.upstreams.has(upstream)) this.entries.delete(key);
    }
  }
}

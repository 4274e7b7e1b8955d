import { createHash } from 'node:crypto';
import type { ApolloServerOptions, BaseContext } from '@apollo/server';
import { LRUCache } from 'lru-cache';
import type { CacheLayer } from '../observability/attempts.js';
import type { SharedEntries } from '../cluster/index.js';

/** Apollo's key-value cache interface, as its persisted queries take it. */
type KeyValueCache = NonNullable<Exclude<ApolloServerOptions<BaseContext>['persistedQueries'], false | undefined>['cache']>;

/**
 * The largest document registered. Apollo's parser stops at 1000 tokens (MAX_TOKENS): a document that
 * parses is rarely a tenth of this, and a larger one is simply not kept (the client sends it again).
 */
export const MAX_PERSISTED_QUERY_BYTES = 64 * 1024;

/**
 * Whether `document` is the one `key` names: Apollo's keys end with the document's SHA-256 (`apq:<hex>`),
 * which it checks before it registers, and again here for what Redis gives (anyone may have written it).
 */
function names(key: string, document: string): boolean {
  return key.slice(key.lastIndexOf(':') + 1) === createHash('sha256').update(document).digest('hex');
}

/** Most documents kept in each layer (the byte bound usually comes first). */
export const MAX_PERSISTED_QUERIES = 10_000;

/** The prefix of Apollo's keys in this cache (APQ_CACHE_PREFIX in @apollo/server's requestPipeline). */
const APOLLO_KEY_PREFIX = 'apq:';

export interface PersistedQueriesOptions {
  /** PERSISTED_QUERIES_MAX_BYTES: all documents together, in each layer. */
  readonly maxBytes: number;
  /** PERSISTED_QUERIES_TTL_SECONDS: how long a registration is kept. */
  readonly ttlSeconds: number;
  /** The layer every replica shares (Redis); absent without REDIS_URL. */
  readonly shared?: SharedEntries;
  readonly onLookup?: (layer: CacheLayer, result: 'hit' | 'miss') => void;
}

/**
 * Apollo's automatic persisted queries (APQ), registered once for the whole cluster: a document a client
 * registered on one replica is found by every other, so a client the balancer moves never pays the
 * second round trip again. Two layers, both bounded in count, bytes and time: this process's and, with
 * REDIS_URL, Redis's. A registration is a document keyed by its own SHA-256 (Apollo checks the hash
 * before it registers, this layer again for what Redis gives), so what any replica finds under a key is
 * that document or nothing: no bus is needed. An APQ never passes TRUSTED_DOCUMENTS_MODE=require: that step runs before Apollo.
 */
export class PersistedQueries implements KeyValueCache {
  private readonly local: LRUCache<string, string>;

  constructor(private readonly options: PersistedQueriesOptions) {
    this.local = new LRUCache<string, string>({
      max: MAX_PERSISTED_QUERIES,
      maxSize: options.maxBytes,
      maxEntrySize: MAX_PERSISTED_QUERY_BYTES,
      sizeCalculation: (value, key) => Buffer.byteLength(value) + key.length,
      ttl: options.ttlSeconds * 1000,
    });
  }

  async get(key: string): Promise<string | undefined> {
    const { shared, onLookup } = this.options;
    const local = this.local.get(key);
    onLookup?.('local', local === undefined ? 'miss' : 'hit');
    if (local !== undefined || !shared) return local;
    const raw = (await shared.get(key))?.toString();
    // Another document under the hash (or garbage) is no registration: the client sends its document again.
    const found = raw !== undefined && names(key, raw) ? raw : undefined;
    onLookup?.('shared', found === undefined ? 'miss' : 'hit');
    if (found !== undefined) this.local.set(key, found);
    return found;
  }

  async set(key: string, value: string): Promise<void> {
    if (Buffer.byteLength(value) > MAX_PERSISTED_QUERY_BYTES) return;
    this.local.set(key, value);
    this.options.shared?.set(key, Buffer.from(value), this.options.ttlSeconds * 1000);
  }

  /**
   * Registers what a request answered without Apollo (a stored response) sent to register: a document
   * and its APQ hash. Apollo would have registered it; without this, the client's next request by hash
   * alone would miss for as long as the response is stored.
   */
  registerSent(query: unknown, extensions: unknown): void {
    const hash = (extensions as { persistedQuery?: { sha256Hash?: unknown } } | undefined)?.persistedQuery?.sha256Hash;
    if (typeof query !== 'string' || typeof hash !== 'string') return;
    const key = APOLLO_KEY_PREFIX + hash;
    if (names(key, query)) void this.set(key, query);
  }

  async delete(key: string): Promise<boolean> {
    return this.local.delete(key);
  }
}

import { createHash } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import { LRUCache } from 'lru-cache';
import type { Identity } from '../auth/identity.js';
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
  /** Whose quota it counts against (a digest of the subject), for a caller with a token. */
  readonly owner?: string;
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

const KEEPABLE = /^(public|private), max-age=(\d+)$/;

/** Most responses kept in each part of each layer (the byte bound comes first for any real response). */
export const MAX_STORED_RESPONSES = 10_000;
/** The share of the per-identity part (bytes) one subject's responses may take, however many tokens and queries it sends. */
export const OWNER_SHARE = 1 / 16;
/** The most responses one subject may have kept. */
export const MAX_ENTRIES_PER_OWNER = 64;

/** Where a request's response is kept: under its text, and for a caller with a token, as that caller's. */
export interface ResponseKey {
  /** The request (and for a token, a digest of it: the token's text is in no key, here or in Redis). */
  readonly text: string;
  /** For a caller with a token: whose quota it counts against (a digest of the subject) and when the token expires. */
  readonly owner?: { readonly id: string; readonly expiresAtMs: number };
}

const digest = (text: string) => createHash('sha256').update(text).digest('base64url');

/** The two parts of a layer: anonymous responses, and those of callers with tokens (one may not evict the other). */
export type Part = 'anonymous' | 'personal';
const partOf = (key: ResponseKey): Part => (key.owner ? 'personal' : 'anonymous');

/** What this process holds of one subject's responses: their keys, oldest first, and their bytes. */
interface Held {
  readonly keys: Set<string>;
  bytes: number;
}

export interface ResponseCacheOptions {
  readonly maxBytes: number;
  readonly maxEntryBytes: number;
  /** The bus every replica hears (this process's own without REDIS_URL). */
  readonly invalidations: Invalidations;
  /** The layer in Redis every replica shares, each part apart; absent without REDIS_URL. */
  readonly shared?: Readonly<Record<Part, SharedEntries>>;
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
    if (parsed.owner !== undefined && typeof parsed.owner !== 'string') return undefined;
    return parsed as StoredResponse;
  } catch {
    return undefined;
  }
}

/**
 * The gateway as a cache (RFC 9111) of its own GraphQL responses, in two parts. Anonymous requests: a
 * response the Cache-Control lets anyone keep (`public, max-age`, only ever set when every upstream answer
 * was public and nothing failed: cache-policy.ts) is answered again to any anonymous request. Callers with
 * a token: a response marked `private, max-age` (every upstream answer public or private with a lifetime,
 * nothing failed, never past the token's expiry) is answered again to requests with that very token only
 * — it is keyed by a digest of the token, which the pipeline verified on this request before the lookup
 * (an expired, refused or withdrawn token never reaches it), and roles live in the token (another role is
 * another token). Each is answered whole, for that long, without parsing, validating or executing
 * anything; `Age` says how old it is. Queries only. Two layers: this process's, and with REDIS_URL one in
 * Redis that every replica fills and reads. The parts are bounded apart (half the bytes each, in each
 * layer), and one subject's responses, whatever its tokens and queries, take at most OWNER_SHARE of its
 * part and MAX_ENTRIES_PER_OWNER entries (its oldest go first): no client evicts the anonymous responses,
 * nor, alone, anyone else's. Each response is stamped with the generations of the upstreams it was made
 * of, as they were when it was looked up: a change through any replica (the bus) outdates it everywhere,
 * and one made as the change happened is not kept. While the bus is not heard, nothing stored is used.
 */
export class GraphQLResponseCache {
  private readonly entries: Readonly<Record<Part, LRUCache<string, StoredResponse>>>;
  /** Each subject's responses in this process's personal part. */
  private readonly owners = new Map<string, Held>();
  private readonly ownerMaxBytes: number;
  private readonly now: () => number;

  constructor(private readonly options: ResponseCacheOptions) {
    // Read at every call (no reference kept to Date.now): a test that moves Date moves the cache too.
    this.now = options.now ?? (() => Date.now());
    const partBytes = Math.max(1, Math.floor(options.maxBytes / 2));
    this.ownerMaxBytes = Math.floor(partBytes * OWNER_SHARE);
    const part = (dispose?: (entry: StoredResponse, key: string) => void) =>
      new LRUCache<string, StoredResponse>({
        max: MAX_STORED_RESPONSES,
        maxSize: partBytes,
        maxEntrySize: Math.min(options.maxEntryBytes, partBytes),
        sizeCalculation: sizeOf,
        ttlAutopurge: false,
        // Every lookup reads the clock (no cached now): expiry is exact, and follows an injected clock.
        ttlResolution: 0,
        perf: { now: () => this.now() },
        ...(dispose ? { dispose } : {}),
      });
    this.entries = { anonymous: part(), personal: part((entry, key) => this.release(entry, key)) };
    options.invalidations.onInvalidate((upstream) => {
      for (const entries of Object.values(this.entries)) for (const [key, entry] of entries.entries()) if (upstream in entry.stamp.upstreams) entries.delete(key);
    });
    // What is held here may have missed a change while the bus was not heard.
    options.invalidations.onTrust((trusted) => {
      if (!trusted) for (const entries of Object.values(this.entries)) entries.clear();
    });
  }

  /**
   * The key of a request: its method, query (GET) or body (POST), and the headers Apollo reads; for a
   * verified caller, a digest of the Authorization header that carried the token, and the caller's subject
   * (as a digest) and token expiry.
   */
  keyOf(method: string, headers: IncomingHttpHeaders, search: string, body: string, identity?: Identity): ResponseKey {
    let text = `${method}\n${search}\n`;
    for (const name of KEY_HEADERS) text += `${headers[name] ?? ''}\n`;
    text += body;
    if (!identity) return { text };
    return { text: `${digest(headers.authorization ?? '')}\n${text}`, owner: { id: digest(identity.sub), expiresAtMs: identity.expiresAtMs } };
  }

  /** Today's generations: taken before a lookup, they are what a response made after it is stamped with. */
  generations(): Generations {
    return this.options.invalidations.generations();
  }

  /** The stored response for `key` that is still current, from this process's layer or the shared one, and where it was found. */
  async get(key: ResponseKey): Promise<{ readonly stored: StoredResponse; readonly layer: CacheLayer } | undefined> {
    const { invalidations, shared, onLookup } = this.options;
    if (!invalidations.trusted) return undefined;
    const part = partOf(key);
    const entries = this.entries[part];
    const local = entries.get(key.text);
    const current = local !== undefined && isCurrent(local.stamp, invalidations.generations());
    onLookup?.('local', current ? 'hit' : 'miss');
    if (current) return { stored: local, layer: 'local' };
    if (!shared) return undefined;
    const raw = await shared[part].get(key.text);
    const found = raw ? decode(raw) : undefined;
    const usable =
      found !== undefined &&
      found.owner === key.owner?.id &&
      invalidations.trusted &&
      isCurrent(found.stamp, invalidations.generations()) &&
      found.expiresAtMs > this.now() &&
      found.expiresAtMs <= (key.owner?.expiresAtMs ?? Number.POSITIVE_INFINITY);
    onLookup?.('shared', usable ? 'hit' : 'miss');
    if (!usable) return undefined;
    this.keep(key, found);
    return { stored: found, layer: 'shared' };
  }

  /** How old a stored response is, in whole seconds (its `Age`). */
  ageOf(stored: StoredResponse): number {
    return Math.max(0, Math.floor((this.now() - stored.storedAtMs) / 1000));
  }

  /**
   * Keeps the response to a query when its Cache-Control says the key's caller may keep it (`public` for
   * an anonymous request, `private` for a token), for as long as it says and never past the token's
   * expiry, unless an upstream it was made of changed since `lookedUpAt` (the generations before the
   * lookup that missed).
   */
  offer(key: ResponseKey, response: OfferedResponse, lookedUpAt: Generations = this.generations()): void {
    const cacheControl = response.headers.find(([name]) => name === 'cache-control')?.[1] ?? '';
    const [, visibility, seconds] = KEEPABLE.exec(cacheControl) ?? [];
    if (visibility !== (key.owner ? 'private' : 'public') || response.operation?.type !== 'query') return;
    const storedAtMs = this.now();
    const expiresAtMs = Math.min(storedAtMs + Number(seconds) * 1000, key.owner?.expiresAtMs ?? Number.POSITIVE_INFINITY);
    if (expiresAtMs - storedAtMs < 1000 || response.upstreams.size === 0 || !this.options.invalidations.trusted) return;
    const stamp = stampOf(lookedUpAt, response.upstreams);
    if (!isCurrent(stamp, this.generations())) return;
    const stored: StoredResponse = {
      headers: response.headers,
      body: response.body,
      operation: response.operation,
      stamp,
      storedAtMs,
      expiresAtMs,
      ...(key.owner ? { owner: key.owner.id } : {}),
    };
    if (!this.keep(key, stored)) return;
    const value = Buffer.from(JSON.stringify(stored));
    const owned = key.owner && { owner: key.owner.id, maxBytes: this.ownerMaxBytes, maxEntries: MAX_ENTRIES_PER_OWNER };
    this.options.shared?.[partOf(key)].set(key.text, value, expiresAtMs - storedAtMs, owned);
  }

  /**
   * Keeps `stored` in this process's part for the key, within its owner's share (its oldest responses
   * make room first); false when it cannot fit at all.
   */
  private keep(key: ResponseKey, stored: StoredResponse): boolean {
    const ttl = stored.expiresAtMs - this.now();
    if (ttl < 1) return false;
    const owner = key.owner?.id;
    if (!owner) return this.entries.anonymous.set(key.text, stored, { ttl }).has(key.text);
    const size = sizeOf(stored, key.text);
    if (size > this.ownerMaxBytes) return false;
    const personal = this.entries.personal;
    // A response stored again under its key replaces itself: its old size leaves first.
    personal.delete(key.text);
    // Its oldest make room (each deletion releases its share, and the last one forgets the owner).
    const before = this.owners.get(owner);
    if (before) {
      for (const oldest of before.keys) {
        if (before.keys.size < MAX_ENTRIES_PER_OWNER && before.bytes + size <= this.ownerMaxBytes) break;
        personal.delete(oldest);
      }
    }
    personal.set(key.text, stored, { ttl });
    if (!personal.has(key.text)) return false;
    const held = this.owners.get(owner) ?? { keys: new Set<string>(), bytes: 0 };
    held.keys.add(key.text);
    held.bytes += size;
    this.owners.set(owner, held);
    return true;
  }

  /** A personal response left this process's part (expired, evicted, replaced, dropped): its owner's share is freed. */
  private release(entry: StoredResponse, key: string): void {
    const held = entry.owner === undefined ? undefined : this.owners.get(entry.owner);
    if (!held?.keys.delete(key)) return;
    held.bytes -= sizeOf(entry, key);
    if (held.keys.size === 0) this.owners.delete(entry.owner as string);
  }
}

/** What a stored response takes in memory, about. */
function sizeOf(entry: StoredResponse, key: string): number {
  return key.length + entry.body.length + 256;
}

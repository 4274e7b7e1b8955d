import { createHash } from 'node:crypto';
import { validateHeaderName, validateHeaderValue } from 'node:http';
import type { SharedCacheName } from '../observability/metrics.js';
import { KEY_PREFIX } from './keys.js';
import type { SharedRedis } from './redis.js';

/**
 * Whether `name` and `value`, read from an entry (anyone with access to Redis may have written it), make
 * a header a response may carry: a token for a name, and one or more values without CR, LF or NUL.
 */
export function isHeader(name: unknown, value: unknown): boolean {
  if (typeof name !== 'string') return false;
  const values = Array.isArray(value) ? (value as unknown[]) : [value];
  try {
    validateHeaderName(name);
    for (const one of values) {
      if (typeof one !== 'string') return false;
      validateHeaderValue(name, one);
    }
    return true;
  } catch {
    return false;
  }
}

/** What one cache may hold in Redis: all its entries together, one entry, and how many. */
export interface EntryBounds {
  readonly maxBytes: number;
  readonly maxEntryBytes: number;
  readonly maxEntries: number;
}

/**
 * Stores one entry and keeps the cache within its bounds, atomically (one script: no replica sees a
 * half-kept bound). KEYS: the entry, the index (a sorted set of entries by expiry), their sizes (a hash),
 * the total and the order (a sorted set of entries by when they were stored); ARGV: the value, its time
 * to live (ms), the most bytes and entries. What expired is forgotten first (at most 100 a call, so one
 * call stays short), then the entry replaces any older one, and while the cache is over a bound the
 * entries stored longest ago are dropped. Not those closest to expiry: a client that fills the cache with
 * long-lived answers would have every shorter-lived one dropped as it is stored, for as long as they live.
 * (Entries of a version that kept no order are dropped by expiry, after the ordered ones.)
 * With a sixth key, the entry's owner (a sorted set of its entries by when they were stored) and ARGV 5
 * and 6, the most bytes and entries one owner may have: the owner's entries that are gone no longer count,
 * and while it is over either, its own entries stored longest ago are dropped first, before anyone else's.
 */
const STORE = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[2])
local function forget(key)
  local size = tonumber(redis.call('HGET', KEYS[3], key) or '0')
  redis.call('HDEL', KEYS[3], key)
  redis.call('ZREM', KEYS[2], key)
  redis.call('ZREM', KEYS[5], key)
  return redis.call('DECRBY', KEYS[4], size)
end
for _, key in ipairs(redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now, 'LIMIT', 0, 100)) do forget(key) end
forget(KEYS[1])
-- The entry's key is held four times (the entry, the index, the order, the sizes), each with Redis's own overhead.
local size = string.len(ARGV[1]) + 4 * string.len(KEYS[1]) + 64
redis.call('SET', KEYS[1], ARGV[1], 'PX', ttl)
redis.call('ZADD', KEYS[2], now + ttl, KEYS[1])
redis.call('ZADD', KEYS[5], now, KEYS[1])
redis.call('HSET', KEYS[3], KEYS[1], size)
local total = redis.call('INCRBY', KEYS[4], size)
if KEYS[6] then
  redis.call('ZADD', KEYS[6], now, KEYS[1])
  if redis.call('PTTL', KEYS[6]) < ttl then redis.call('PEXPIRE', KEYS[6], ttl) end
  local held, sizes, bytes = {}, {}, 0
  for _, key in ipairs(redis.call('ZRANGE', KEYS[6], 0, -1)) do
    local kept = redis.call('HGET', KEYS[3], key)
    if kept then
      table.insert(held, key)
      sizes[key] = tonumber(kept)
      bytes = bytes + sizes[key]
    else
      redis.call('ZREM', KEYS[6], key)
    end
  end
  local count = #held
  for _, oldest in ipairs(held) do
    if count <= tonumber(ARGV[6]) and bytes <= tonumber(ARGV[5]) then break end
    if oldest ~= KEYS[1] then
      count = count - 1
      bytes = bytes - sizes[oldest]
      redis.call('DEL', oldest)
      redis.call('ZREM', KEYS[6], oldest)
      total = forget(oldest)
    end
  end
end
-- At most 100 evictions a call, so one call stays short (a bound lowered by a deploy is reached over a few stores).
local evicted = 0
while (total > tonumber(ARGV[3]) or redis.call('ZCARD', KEYS[2]) > tonumber(ARGV[4])) and evicted < 100 do
  evicted = evicted + 1
  local first = redis.call('ZRANGE', KEYS[5], 0, 0)[1] or redis.call('ZRANGE', KEYS[2], 0, 0)[1]
  if not first then break end
  redis.call('DEL', first)
  total = forget(first)
end
return total
`;

type Store = (entry: string, index: string, sizes: string, total: string, order: string, value: Buffer, ttlMs: number, maxBytes: number, maxEntries: number) => Promise<number>;
type StoreOwned = (entry: string, index: string, sizes: string, total: string, order: string, owner: string, value: Buffer, ttlMs: number, maxBytes: number, maxEntries: number, ownerBytes: number, ownerEntries: number) => Promise<number>;

/** Whose entry it is, and how much one owner may keep: an owner over it loses its own oldest entries, not anyone else's. */
export interface EntryOwner {
  /** Not a credential: it is part of a key in Redis (a digest of the subject, say). */
  readonly owner: string;
  readonly maxBytes: number;
  readonly maxEntries: number;
}

/**
 * One cache's entries in Redis, shared by every replica: bounded in bytes per entry, in total and in
 * count, each expiring with the lifetime it was given. Keys are hashes of the caller's keys (a client
 * chooses much of a key: its length must not reach Redis). Lookups and stores go through the gateway's
 * one connection and fail open: an entry Redis does not give within REDIS_COMMAND_TIMEOUT_MS is a miss,
 * one it could not keep is not kept.
 */
export class SharedEntries {
  private readonly store: Store;
  private readonly storeOwned: StoreOwned;
  private readonly prefix: string;

  /** `part`: a cache kept in two parts, each bounded apart (its keys under `<name>:<part>:`). */
  constructor(
    private readonly redis: SharedRedis,
    readonly name: SharedCacheName,
    readonly bounds: EntryBounds,
    part?: string,
  ) {
    this.prefix = `${KEY_PREFIX}${name}:${part === undefined ? '' : `${part}:`}`;
    redis.commands.defineCommand('storeEntry', { numberOfKeys: 5, lua: STORE });
    redis.commands.defineCommand('storeOwnedEntry', { numberOfKeys: 6, lua: STORE });
    const commands = redis.commands as unknown as { storeEntry: Store; storeOwnedEntry: StoreOwned };
    this.store = commands.storeEntry.bind(redis.commands);
    this.storeOwned = commands.storeOwnedEntry.bind(redis.commands);
  }

  private keyOf(key: string): string {
    return `${this.prefix}entry:${createHash('sha256').update(key).digest('base64url')}`;
  }

  /**
   * The entry stored under `key`, or undefined (none, or Redis did not give it in time). At most one byte
   * more than an entry may hold is read: a longer value was not stored by a replica (anyone with access to
   * Redis may have put it there), and is not worth reading.
   */
  async get(key: string): Promise<Buffer | undefined> {
    if (!this.redis.up) return undefined;
    try {
      const found = await this.redis.answer(this.name, () => this.redis.commands.getrangeBuffer(this.keyOf(key), 0, this.bounds.maxEntryBytes));
      // No entry reads as nothing.
      return found.length === 0 || found.length > this.bounds.maxEntryBytes ? undefined : found;
    } catch {
      return undefined;
    }
  }

  /** Keeps `value` under `key` for `ttlMs`, unless it is larger than an entry may be, within its owner's bounds when it has one; never waits for Redis. */
  set(key: string, value: Buffer, ttlMs: number, owned?: EntryOwner): void {
    if (value.length > this.bounds.maxEntryBytes || ttlMs < 1 || !this.redis.writable) return;
    const { maxBytes, maxEntries } = this.bounds;
    const keys = [this.keyOf(key), `${this.prefix}index`, `${this.prefix}sizes`, `${this.prefix}total`, `${this.prefix}order`] as const;
    const stored = owned
      ? () => this.storeOwned(...keys, `${this.prefix}owner:${owned.owner}`, value, Math.ceil(ttlMs), maxBytes, maxEntries, owned.maxBytes, owned.maxEntries)
      : () => this.store(...keys, value, Math.ceil(ttlMs), maxBytes, maxEntries);
    this.redis.answer(this.name, stored).catch(() => undefined);
  }
}

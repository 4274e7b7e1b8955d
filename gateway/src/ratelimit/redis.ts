import { Redis } from 'ioredis';
import type { Logger } from '../observability/logger.js';
import { decision, type BucketShape, type RateDecision, type RateLimiter } from './limiter.js';

/**
 * One token bucket per key, updated atomically in Redis with Redis's own clock, so every gateway
 * instance shares it and their clocks do not matter. Returns whether a token was taken and how many are left.
 */
const TAKE_TOKEN = `
local capacity = tonumber(ARGV[1])
local refill_per_ms = tonumber(ARGV[2])
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ms')
local tokens = tonumber(state[1]) or capacity
local updated = tonumber(state[2]) or now
tokens = math.min(capacity, tokens + math.max(0, now - updated) * refill_per_ms)
local allowed = 0
if tokens >= 1 then
  tokens = tokens - 1
  allowed = 1
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ms', now)
redis.call('PEXPIRE', KEYS[1], math.ceil(capacity / refill_per_ms) + 1000)
return { allowed, tostring(tokens) }
`;

type TakeToken = (key: string, capacity: number, refillPerMs: number) => Promise<[number, string]>;

/**
 * Rate limits shared by every gateway instance through Redis. When Redis does not answer within
 * 250 ms the request is let through (and logged): losing the limiter must not take the API down.
 */
export class RedisRateLimiter implements RateLimiter {
  private readonly redis: Redis;
  private readonly takeToken: TakeToken;

  constructor(
    url: string,
    private readonly shape: BucketShape,
    private readonly logger: Logger,
  ) {
    this.redis = new Redis(url, { enableOfflineQueue: false, maxRetriesPerRequest: 0, commandTimeout: 250, connectTimeout: 1000, keyPrefix: 'gateway:ratelimit:' });
    this.redis.on('error', (error: Error) => this.logger.warn({ err: error.message }, 'rate limit store unavailable'));
    this.redis.defineCommand('takeToken', { numberOfKeys: 1, lua: TAKE_TOKEN });
    this.takeToken = (this.redis as unknown as { takeToken: TakeToken }).takeToken.bind(this.redis);
  }

  async take(key: string): Promise<RateDecision> {
    try {
      const [allowed, tokens] = await this.takeToken(key, this.shape.capacity, this.shape.refillPerMs);
      return decision(this.shape, allowed === 1, Number(tokens));
    } catch (error) {
      this.logger.warn({ err: (error as Error).message }, 'rate limit store unavailable: request let through');
      return decision(this.shape, true, this.shape.capacity);
    }
  }

  async close(): Promise<void> {
    this.redis.disconnect();
  }
}

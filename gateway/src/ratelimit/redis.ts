import { KEY_PREFIX } from '../cluster/keys.js';
import type { SharedRedis } from '../cluster/redis.js';
import type { GatewayMetrics } from '../observability/metrics.js';
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
 * Rate limits shared by every gateway instance through Redis (the gateway's one connection, SharedRedis).
 * When Redis does not answer within REDIS_COMMAND_TIMEOUT_MS the request is let through: losing the
 * limiter must not take the API down. Every failed call is counted (`gateway_rate_limit_store_errors_total`)
 * and `gateway_rate_limit_store_up` says whether the store answers; the outage itself is logged once, by
 * the connection's owner.
 */
export class RedisRateLimiter implements RateLimiter {
  private readonly takeToken: TakeToken;
  private readonly prefix: string;

  constructor(
    private readonly redis: SharedRedis,
    private readonly shape: BucketShape,
    /** `requests` or `registrations`: its buckets' keys and its metrics' label. */
    private readonly name: string,
    private readonly metrics: GatewayMetrics,
  ) {
    this.prefix = `${KEY_PREFIX}ratelimit:${name}:`;
    redis.commands.defineCommand('takeToken', { numberOfKeys: 1, lua: TAKE_TOKEN });
    this.takeToken = (redis.commands as unknown as { takeToken: TakeToken }).takeToken.bind(redis.commands);
    metrics.setRateLimitStoreUp(name, redis.up);
    metrics.rateLimitStoreFailed(name, 0);
    redis.onChange((connection, up) => connection === 'commands' && metrics.setRateLimitStoreUp(name, up));
  }

  async take(key: string): Promise<RateDecision> {
    try {
      const [allowed, tokens] = await this.redis.answer('ratelimit', () => this.takeToken(this.prefix + key, this.shape.capacity, this.shape.refillPerMs));
      this.metrics.setRateLimitStoreUp(this.name, true);
      return decision(this.shape, allowed === 1, Number(tokens));
    } catch {
      this.metrics.rateLimitStoreFailed(this.name);
      this.metrics.setRateLimitStoreUp(this.name, false);
      return decision(this.shape, true, this.shape.capacity);
    }
  }
}

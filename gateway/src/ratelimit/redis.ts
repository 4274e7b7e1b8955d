import { Redis } from 'ioredis';
import type { Logger } from '../observability/logger.js';
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

/** Who hears about the store: its name (`requests`, `registrations`), the log and the metrics. */
export interface StoreObservers {
  readonly name: string;
  readonly logger: Logger;
  readonly metrics: GatewayMetrics;
}

/** How long a request waits for Redis's answer before it is let through. */
const ANSWER_WITHIN_MS = 250;

/**
 * ioredis's own timeout, a backstop well past ANSWER_WITHIN_MS: a command Redis never answers leaves
 * its queue after this, so a stopped server cannot pile them up.
 */
const COMMAND_TIMEOUT_MS = 2000;

/**
 * The command's answer, or a failure once `ms` have passed without one. When this process's own event
 * loop was busy, the timer fires late and the answer may be waiting, unread, in the socket: timers run
 * before I/O is read in each turn of the loop. So I/O gets one turn first (setImmediate runs after the
 * poll phase), and only a Redis that really has not answered counts as not answering.
 */
function answeredWithin<T>(command: Promise<T>, ms: number): Promise<T> {
  return new Promise((resolve, reject) => {
    let pending = true;
    const settle = (then: () => void) => {
      if (!pending) return;
      pending = false;
      clearTimeout(timer);
      then();
    };
    const timer = setTimeout(() => setImmediate(() => settle(() => reject(new Error(`Redis did not answer within ${ms} ms`)))), ms);
    command.then(
      (value) => settle(() => resolve(value)),
      (error: unknown) => settle(() => reject(error as Error)),
    );
  });
}

/**
 * Rate limits shared by every gateway instance through Redis. When Redis does not answer within
 * 250 ms the request is let through: losing the limiter must not take the API down (a stall of the
 * gateway's own event loop is not Redis failing to answer). Every failed call is counted
 * (`gateway_rate_limit_store_errors_total`), `gateway_rate_limit_store_up` says whether the store
 * answers, and the log says when it stops and starts answering — once, not on every request.
 */
export class RedisRateLimiter implements RateLimiter {
  private readonly redis: Redis;
  private readonly takeToken: TakeToken;
  /** `connecting` until the first connection: a request meanwhile is let through without an outage being declared. */
  private state: 'connecting' | 'up' | 'down' = 'connecting';

  constructor(
    store: { readonly url: string; readonly password?: string },
    private readonly shape: BucketShape,
    private readonly observers: StoreObservers,
  ) {
    // A rediss:// URL connects with TLS (ioredis); REDIS_PASSWORD, when set, wins over one in the URL.
    this.redis = new Redis(store.url, {
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      commandTimeout: COMMAND_TIMEOUT_MS,
      connectTimeout: 1000,
      keyPrefix: 'gateway:ratelimit:',
      ...(store.password !== undefined ? { password: store.password } : {}),
    });
    this.redis.on('error', (error: Error) => this.markDown(error));
    this.redis.on('ready', () => this.markUp());
    this.redis.defineCommand('takeToken', { numberOfKeys: 1, lua: TAKE_TOKEN });
    this.takeToken = (this.redis as unknown as { takeToken: TakeToken }).takeToken.bind(this.redis);
    observers.metrics.setRateLimitStoreUp(observers.name, false);
    observers.metrics.rateLimitStoreFailed(observers.name, 0);
  }

  async take(key: string): Promise<RateDecision> {
    try {
      const [allowed, tokens] = await answeredWithin(this.takeToken(key, this.shape.capacity, this.shape.refillPerMs), ANSWER_WITHIN_MS);
      this.markUp();
      return decision(this.shape, allowed === 1, Number(tokens));
    } catch (error) {
      this.observers.metrics.rateLimitStoreFailed(this.observers.name);
      if (this.state === 'up') this.markDown(error as Error);
      return decision(this.shape, true, this.shape.capacity);
    }
  }

  /** The connection failed (an 'error' event) or a call did while connected. */
  private markDown(error: Error): void {
    if (this.state === 'down') return;
    this.state = 'down';
    this.observers.metrics.setRateLimitStoreUp(this.observers.name, false);
    this.observers.logger.warn({ limiter: this.observers.name, err: error.message }, 'rate limit store unavailable: requests are let through unlimited until it answers');
  }

  private markUp(): void {
    if (this.state === 'up') return;
    const recovered = this.state === 'down';
    this.state = 'up';
    this.observers.metrics.setRateLimitStoreUp(this.observers.name, true);
    if (recovered) this.observers.logger.info({ limiter: this.observers.name }, 'rate limit store answers again');
  }

  async close(): Promise<void> {
    // ioredis listens for its socket's first error only (redis/ioredis#961): a TLS alert arriving as the
    // socket closes would be an uncaught exception. Nothing is read from it any more.
    this.redis.stream?.on('error', () => undefined);
    this.redis.disconnect();
  }
}

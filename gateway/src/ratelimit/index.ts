import type { AuthOutcome } from '../auth/authenticate.js';
import type { GatewayConfig } from '../config.js';
import { GatewayError } from '../errors.js';
import type { Forwarded } from '../forwarded.js';
import type { Logger } from '../observability/logger.js';
import type { GatewayMetrics } from '../observability/metrics.js';
import type { GatewayPlugin } from '../pipeline/pipeline.js';
import type { CallGuard } from '../upstream/call.js';
import { bucketShape, type BucketShape, type RateDecision, type RateLimiter } from './limiter.js';
import { MemoryRateLimiter } from './memory.js';

export type { RateDecision, RateLimiter };

/**
 * Token buckets of one shape: shared through Redis with REDIS_URL, in memory without. The Redis client
 * is only loaded when it is used.
 */
async function bucketsOf(shape: BucketShape, config: GatewayConfig, logger: Logger): Promise<RateLimiter> {
  if (!config.redisUrl) return new MemoryRateLimiter(shape);
  const { RedisRateLimiter } = await import('./redis.js');
  return new RedisRateLimiter(config.redisUrl, shape, logger);
}

/** The request rate limiter (RATE_LIMIT_PER_MINUTE); none at 0 per minute. */
export async function createRateLimiter(config: GatewayConfig, logger: Logger): Promise<RateLimiter | undefined> {
  return config.rateLimitPerMinute === 0 ? undefined : bucketsOf(bucketShape(config.rateLimitPerMinute), config, logger);
}

/** Accounts created per client address (REGISTRATIONS_PER_HOUR); none at 0. */
export async function createRegistrationLimiter(config: GatewayConfig, logger: Logger): Promise<RateLimiter | undefined> {
  return config.registrationsPerHour === 0 ? undefined : bucketsOf(bucketShape(config.registrationsPerHour, 3_600_000), config, logger);
}

/**
 * A guard of the upstream client: a call that creates an account (`POST /auth/register`, from REST or
 * from GraphQL's `register`) takes a token from its client address's bucket first, or is refused.
 */
export function registrationGuard(limiter: RateLimiter, metrics: GatewayMetrics): CallGuard {
  return {
    applies: (upstream, call) => upstream === 'auth' && call.method === 'POST' && call.path === '/auth/register',
    async check(call) {
      const decision = await limiter.take(`register:${call.caller.forwarded?.clientIp ?? ''}`);
      if (decision.allowed) return;
      metrics.rateLimited.inc();
      throw new GatewayError('RATE_LIMITED', `Too many accounts created from this address: try again in ${decision.retryAfterSeconds} s`, {
        headers: { 'retry-after': String(decision.retryAfterSeconds) },
      });
    },
  };
}

/**
 * Whose bucket a request draws from: the user of a verified token, else the client address (through
 * TRUST_PROXY_HOPS). A refused token counts against its sender's address, which also slows guessing.
 */
export function rateLimitKey(auth: AuthOutcome, forwarded: Forwarded): string {
  return auth.kind === 'verified' ? `user:${auth.identity.sub}` : `ip:${forwarded.clientIp}`;
}

/** The RateLimit-* headers (IETF httpapi draft fields) for a decision. */
export function rateLimitHeaders(decision: RateDecision): Record<string, string> {
  return {
    'ratelimit-limit': String(decision.limit),
    'ratelimit-remaining': String(decision.remaining),
    'ratelimit-reset': String(decision.resetSeconds),
    'ratelimit-policy': `${decision.limit};w=60`,
  };
}

/**
 * Takes a token for the caller before any face looks at the request: a refusal is a 429 before any
 * other check, so no upstream is called. Own endpoints (probes, metrics) answered earlier: never limited.
 */
export function rateLimitPlugin(limiter: RateLimiter, metrics: GatewayMetrics): GatewayPlugin {
  return {
    name: 'rate-limit',
    phases: {
      async rateLimit({ res, state }) {
        const decision = await limiter.take(rateLimitKey(state.get('auth'), state.get('forwarded')));
        for (const [name, value] of Object.entries(rateLimitHeaders(decision))) res.setHeader(name, value);
        if (decision.allowed) return undefined;
        metrics.rateLimited.inc();
        throw new GatewayError('RATE_LIMITED', `Too many requests: try again in ${decision.retryAfterSeconds} s`, { headers: { 'retry-after': String(decision.retryAfterSeconds) } });
      },
    },
  };
}

import type { AuthOutcome } from '../auth/authenticate.js';
import type { GatewayConfig } from '../config.js';
import { GatewayError } from '../errors.js';
import type { Forwarded } from '../forwarded.js';
import type { Logger } from '../observability/logger.js';
import type { GatewayMetrics } from '../observability/metrics.js';
import type { GatewayPlugin } from '../pipeline/pipeline.js';
import { bucketShape, type RateDecision, type RateLimiter } from './limiter.js';
import { MemoryRateLimiter } from './memory.js';

export type { RateDecision, RateLimiter };

/**
 * The configured limiter: shared through Redis with REDIS_URL, in memory without; none at 0 per minute.
 * The Redis client is only loaded when it is used.
 */
export async function createRateLimiter(config: GatewayConfig, logger: Logger): Promise<RateLimiter | undefined> {
  if (config.rateLimitPerMinute === 0) return undefined;
  const shape = bucketShape(config.rateLimitPerMinute);
  if (!config.redisUrl) return new MemoryRateLimiter(shape);
  const { RedisRateLimiter } = await import('./redis.js');
  return new RedisRateLimiter(config.redisUrl, shape, logger);
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

import type { IncomingMessage } from 'node:http';
import type { GatewayConfig } from '../config.js';
import type { Logger } from '../observability/logger.js';
import type { RequestContext } from '../request-context.js';
import { clientAddress } from '../rest/headers.js';
import { bucketShape, type RateDecision, type RateLimiter } from './limiter.js';
import { MemoryRateLimiter } from './memory.js';
import { RedisRateLimiter } from './redis.js';

export type { RateDecision, RateLimiter };

/** The configured limiter: shared through Redis with REDIS_URL, in memory without; none at 0 per minute. */
export function createRateLimiter(config: GatewayConfig, logger: Logger): RateLimiter | undefined {
  if (config.rateLimitPerMinute === 0) return undefined;
  const shape = bucketShape(config.rateLimitPerMinute);
  return config.redisUrl ? new RedisRateLimiter(config.redisUrl, shape, logger) : new MemoryRateLimiter(shape);
}

/**
 * Whose bucket a request draws from: the user of a valid token, else the client address (through
 * TRUST_PROXY_HOPS). A bad token counts against its sender's address, which also slows guessing.
 */
export async function rateLimitKey(req: IncomingMessage, context: RequestContext, trustProxyHops: number): Promise<string> {
  try {
    const identity = await context.authenticate();
    if (identity) return `user:${identity.sub}`;
  } catch {
    // falls through to the address
  }
  return `ip:${clientAddress(req.socket.remoteAddress ?? '', req.headers['x-forwarded-for'], trustProxyHops).ip}`;
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

import { LRUCache } from 'lru-cache';
import type { AuthOutcome } from '../auth/authenticate.js';
import type { SharedRedis } from '../cluster/redis.js';
import type { GatewayConfig } from '../config.js';
import { GatewayError } from '../errors.js';
import type { Forwarded } from '../forwarded.js';
import type { Logger } from '../observability/logger.js';
import type { GatewayMetrics } from '../observability/metrics.js';
import type { GatewayPlugin } from '../pipeline/pipeline.js';
import { operationOf, type CallGuard, type UpstreamCall } from '../upstream/call.js';
import { upstreamOperations } from '../routing/operations.js';
import { ConcurrencyGate } from './concurrency.js';
import { bucketShape, type BucketShape, type RateDecision, type RateLimiter } from './limiter.js';
import { MemoryRateLimiter } from './memory.js';

export type { RateDecision, RateLimiter };

/**
 * Token buckets of one shape: shared through the gateway's Redis connection with REDIS_URL, in memory
 * without. The Redis limiter is only loaded when it is used.
 */
async function bucketsOf(name: string, shape: BucketShape, redis: SharedRedis | undefined, metrics: GatewayMetrics): Promise<RateLimiter> {
  if (!redis) return new MemoryRateLimiter(shape);
  const { RedisRateLimiter } = await import('./redis.js');
  return new RedisRateLimiter(redis, shape, name, metrics);
}

/** The upstream operation that creates an account (REST `POST /auth/register` however spelt, GraphQL `register`). */
const REGISTER = 'register';

/**
 * The operations that check or hash a password (scrypt in the authentication service: tens of
 * milliseconds of CPU each, by design).
 */
const CREDENTIAL_OPERATIONS: ReadonlySet<string> = new Set(['login', REGISTER]);

/** The operations a guard keys on, each checked to be in schemas/ (a renamed one would silently escape it). */
function knownOperations(ids: Iterable<string>): ReadonlySet<string> {
  const known = upstreamOperations();
  for (const id of ids) if (!known.has(id)) throw new Error(`no operation ${id} in schemas/: a guard keys on it`);
  return new Set(ids);
}

/** What every per-address guard counts a call under: its client's key (the gateway's own calls share one). */
const clientKeyOfCall = (call: UpstreamCall) => call.caller.forwarded?.clientKey ?? '';

function guardRefusal(metrics: GatewayMetrics, detail: string, retryAfterSeconds: number): GatewayError {
  metrics.rateLimited.inc();
  return new GatewayError('RATE_LIMITED', detail, { headers: { 'retry-after': String(retryAfterSeconds) } });
}

/**
 * A guard of the upstream client: a call that creates an account, from either face, takes a token from
 * its client's bucket first, or is refused. It keys on the operation the call reaches, not on a path.
 */
function registrationGuard(limiter: RateLimiter, metrics: GatewayMetrics): CallGuard {
  const guarded = knownOperations([REGISTER]);
  return {
    applies: (_upstream, call) => guarded.has(operationOf(call)?.operationId ?? ''),
    async check(call) {
      const decision = await limiter.take(`register:${clientKeyOfCall(call)}`);
      if (decision.allowed) return undefined;
      throw guardRefusal(metrics, `Too many accounts created from this address: try again in ${decision.retryAfterSeconds} s`, decision.retryAfterSeconds);
    },
  };
}

/**
 * A guard of the upstream client: each client may have at most `perClient` password checks (login,
 * register) in flight, on both faces together; past it the call is refused, never queued, so one client's
 * flood of guesses holds at most that many of the authentication service's hashes at a time.
 */
function credentialGuard(perClient: number, metrics: GatewayMetrics): CallGuard {
  const guarded = knownOperations(CREDENTIAL_OPERATIONS);
  const gate = new ConcurrencyGate(perClient);
  return {
    applies: (_upstream, call) => guarded.has(operationOf(call)?.operationId ?? ''),
    async check(call) {
      const release = gate.enter(clientKeyOfCall(call));
      if (release) return release;
      throw guardRefusal(metrics, `Too many sign-ins or registrations in progress from this address (at most ${perClient} at once): try again in a moment`, 1);
    },
  };
}

/**
 * Whose bucket a request draws from: the user of a verified token, else the client's key (its address
 * through TRUST_PROXY_HOPS, IPv6 by prefix). A refused token counts against its sender's address, which also slows guessing.
 */
export function rateLimitKey(auth: AuthOutcome, forwarded: Forwarded): string {
  return auth.kind === 'verified' ? `user:${auth.identity.sub}` : `ip:${forwarded.clientKey}`;
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

/** Buckets whose running dry was logged, until they refill (a flood is one line per client, not one per request). */
const MAX_REMEMBERED_REFUSALS = 10_000;

/** RATE_LIMIT_PER_MINUTE's buckets, and the plugin that draws a token for every request. */
export interface RequestLimits {
  readonly plugin: GatewayPlugin;
  /**
   * Draws a token for one more request of a caller that is not an HTTP request of its own (a subscribe
   * message on a WebSocket); throws the 429's error when its bucket is dry.
   */
  take(auth: AuthOutcome, forwarded: Forwarded, requestId: string): Promise<RateDecision>;
}

/**
 * Takes a token for the caller before any face looks at the request: a refusal is a 429 before any
 * other check, so no upstream is called. Own endpoints (probes, metrics) answered earlier: never limited.
 * The first refusal of a bucket is logged with its request id; the next ones until the bucket refills
 * are in the access log only.
 */
function requestLimits(limiter: RateLimiter, metrics: GatewayMetrics, logger: Logger): RequestLimits {
  const refusedUntil = new LRUCache<string, number>({ max: MAX_REMEMBERED_REFUSALS });
  async function take(auth: AuthOutcome, forwarded: Forwarded, requestId: string): Promise<RateDecision> {
    const key = rateLimitKey(auth, forwarded);
    const decision = await limiter.take(key);
    if (decision.allowed) return decision;
    metrics.rateLimited.inc();
    if ((refusedUntil.get(key) ?? 0) < Date.now()) {
      refusedUntil.set(key, Date.now() + decision.resetSeconds * 1000);
      logger.info({ requestId, bucket: key, limit: decision.limit, retryAfterSeconds: decision.retryAfterSeconds }, 'rate limit reached');
    }
    throw new GatewayError('RATE_LIMITED', `Too many requests: try again in ${decision.retryAfterSeconds} s`, { headers: { 'retry-after': String(decision.retryAfterSeconds), ...rateLimitHeaders(decision) } });
  }
  return {
    take,
    plugin: {
      name: 'rate-limit',
      phases: {
        async rateLimit({ res, state }) {
          const decision = await take(state.get('auth'), state.get('forwarded'), state.get('requestId'));
          for (const [name, value] of Object.entries(rateLimitHeaders(decision))) res.setHeader(name, value);
          return undefined;
        },
      },
    },
  };
}

/** RATE_LIMIT_PER_MINUTE: its buckets (in Redis with REDIS_URL) and the plugin that draws from them; none at 0. */
export async function rateLimiting(config: GatewayConfig, redis: SharedRedis | undefined, logger: Logger, metrics: GatewayMetrics): Promise<RequestLimits | undefined> {
  if (config.rateLimitPerMinute === 0) return undefined;
  return requestLimits(await bucketsOf('requests', bucketShape(config.rateLimitPerMinute), redis, metrics), metrics, logger);
}

/**
 * The bounds on calls that check a password or create an account, as the upstream client's guards:
 * CREDENTIAL_CALLS_PER_CLIENT first (a call it refuses takes no registration token), then
 * REGISTRATIONS_PER_HOUR (its buckets in Redis with REDIS_URL).
 */
export async function credentialLimits(config: GatewayConfig, redis: SharedRedis | undefined, metrics: GatewayMetrics): Promise<readonly CallGuard[]> {
  const registrations = config.registrationsPerHour === 0 ? undefined : await bucketsOf('registrations', bucketShape(config.registrationsPerHour, 3_600_000), redis, metrics);
  return [...(config.credentialCallsPerClient > 0 ? [credentialGuard(config.credentialCallsPerClient, metrics)] : []), ...(registrations ? [registrationGuard(registrations, metrics)] : [])];
}

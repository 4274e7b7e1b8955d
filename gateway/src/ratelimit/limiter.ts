/** The answer of a token bucket for one request. */
export interface RateDecision {
  readonly allowed: boolean;
  readonly limit: number;
  /** Whole tokens left after this request. */
  readonly remaining: number;
  /**
   * `RateLimit-Reset`: while tokens remain, seconds until the bucket is full again; once refused, the
   * same as Retry-After (when the next request may pass), so the two headers never disagree.
   */
  readonly resetSeconds: number;
  /** When refused: seconds until one token is back. */
  readonly retryAfterSeconds: number;
}

export interface RateLimiter {
  /** Takes one token from `key`'s bucket. */
  take(key: string): Promise<RateDecision>;
}

/** A bucket of `capacity` tokens that refills at `capacity` per window (a minute unless said). */
export interface BucketShape {
  readonly capacity: number;
  readonly refillPerMs: number;
}

export function bucketShape(capacity: number, windowMs = 60_000): BucketShape {
  return { capacity, refillPerMs: capacity / windowMs };
}

/** Whole seconds until `tokens` more are back, counted from whole milliseconds (the float refill rate would turn 1800 s into 1801). */
function secondsUntil(tokens: number, shape: BucketShape): number {
  return Math.ceil(Math.round(tokens / shape.refillPerMs) / 1000);
}

/** The decision for a bucket holding `tokens` after the take (and whether the take happened). */
export function decision(shape: BucketShape, allowed: boolean, tokens: number): RateDecision {
  const retryAfterSeconds = allowed ? 0 : Math.max(1, secondsUntil(1 - tokens, shape));
  return {
    allowed,
    limit: shape.capacity,
    remaining: Math.max(0, Math.floor(tokens)),
    resetSeconds: allowed ? secondsUntil(shape.capacity - tokens, shape) : retryAfterSeconds,
    retryAfterSeconds,
  };
}

import { LRUCache } from 'lru-cache';
import { decision, type BucketShape, type RateDecision, type RateLimiter } from './limiter.js';

interface Bucket {
  tokens: number;
  updatedMs: number;
}

/** Token buckets in this process: for a single gateway instance (no REDIS_URL). Bounded in keys. */
export class MemoryRateLimiter implements RateLimiter {
  // Bounded by a count of entries as a size, not `max`: lru-cache allocates its arrays for `max` entries
  // up front (66 ms and 1.6 MB of heap for 100,000, each limiter, each gateway); this grows as it is used.
  private readonly buckets = new LRUCache<string, Bucket>({ maxSize: 100_000, sizeCalculation: () => 1 });

  constructor(private readonly shape: BucketShape) {}

  async take(key: string, nowMs = Date.now()): Promise<RateDecision> {
    const bucket = this.buckets.get(key) ?? { tokens: this.shape.capacity, updatedMs: nowMs };
    bucket.tokens = Math.min(this.shape.capacity, bucket.tokens + (nowMs - bucket.updatedMs) * this.shape.refillPerMs);
    bucket.updatedMs = nowMs;
    const allowed = bucket.tokens >= 1;
    if (allowed) bucket.tokens -= 1;
    this.buckets.set(key, bucket);
    return decision(this.shape, allowed, bucket.tokens);
  }
}

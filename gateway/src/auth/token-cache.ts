import { LRUCache } from 'lru-cache';
import type { Identity } from './identity.js';

/** How long a verified token is trusted without verifying it again, at most (JWKS keys may be withdrawn). */
const MAX_TRUST_MS = 5 * 60 * 1000;

/**
 * Verified tokens, keyed by the whole token string, so a token reused across requests is verified
 * once. Bounded; an entry never outlives its token's `exp`. Only successes are ever stored.
 */
export class TokenCache {
  private readonly entries: LRUCache<string, Identity>;

  constructor(maxEntries = 10_000) {
    this.entries = new LRUCache<string, Identity>({ max: maxEntries, ttlAutopurge: false });
  }

  get(token: string, nowMs = Date.now()): Identity | undefined {
    const identity = this.entries.get(token);
    if (identity && identity.expiresAtMs <= nowMs) {
      this.entries.delete(token);
      return undefined;
    }
    return identity;
  }

  set(token: string, identity: Identity, nowMs = Date.now()): void {
    const ttl = Math.min(identity.expiresAtMs - nowMs, MAX_TRUST_MS);
    if (ttl > 0) this.entries.set(token, identity, { ttl });
  }

  get size(): number {
    return this.entries.size;
  }
}

import type { Identity } from '../auth/identity.js';
import type { UpstreamName } from '../../../shared/upstreams.js';

type Headers = Readonly<Record<string, string | string[] | undefined>>;

// Directives as whole words of the header (`private` is not `private-foo`), compiled once: every upstream answer is read.
const directive = (name: string) => new RegExp(`(?:^|[,\\s])${name}(?:$|[,\\s=])`);
const PUBLIC = directive('public');
const PRIVATE = directive('private');
const NO_STORE = directive('no-store');
const NO_CACHE = directive('no-cache');
const S_MAXAGE = /(?:^|[,\s])s-maxage=(\d+)/;
const MAX_AGE = /(?:^|[,\s])max-age=(\d+)/;

const seconds = (pattern: RegExp, header: string): number | undefined => {
  const match = pattern.exec(header);
  return match ? Number(match[1]) : undefined;
};

/** Who a response is for, and how it went. */
export interface ResponseOutcome {
  /** The verified caller; absent for an anonymous request. */
  readonly identity?: Identity | undefined;
  /** Credentials were sent (a token that is not the identity's would be no one's to keep). Default: an identity is there. */
  readonly credentials?: boolean;
  /** Some field failed. */
  readonly failed: boolean;
  readonly now: number;
}

/**
 * The cache policy of a GraphQL response, from the answers of its upstream calls. For an anonymous
 * request: shareable (`public, max-age`) only when every one was `public` with a lifetime (`s-maxage`,
 * else `max-age`, less its `Age`), for the least of them — so a CDN (and the gateway's response cache,
 * shared by every replica) may keep an anonymous catalogue query that long. For a caller with a token:
 * `private, max-age` when every one was `public` or `private` with a lifetime, for the least of them and
 * never past the token's expiry — only that caller's own cache (and the gateway's entry for that token)
 * may keep it. None may vary on a request header (a whole response has no Vary of its upstreams' to be
 * matched by), say `no-store` or `no-cache`; nothing that failed is kept by anyone.
 */
export class ResponseCachePolicy {
  private calls = 0;
  private publicOnly = true;
  private keepable = true;
  private maxAge = Number.POSITIVE_INFINITY;
  /** The upstreams whose answers the response is made of: a change to one of them outdates it. */
  readonly upstreams = new Set<UpstreamName>();

  /** An upstream answer's headers. */
  note(upstream: UpstreamName, headers: Headers): void {
    this.calls += 1;
    this.upstreams.add(upstream);
    const header = String(headers['cache-control'] ?? '').toLowerCase();
    const lifetime = seconds(S_MAXAGE, header) ?? seconds(MAX_AGE, header);
    const varies = headers.vary !== undefined && String(headers.vary).trim() !== '';
    const isPublic = PUBLIC.test(header);
    const isPrivate = PRIVATE.test(header);
    if ((!isPublic && !isPrivate) || NO_STORE.test(header) || NO_CACHE.test(header) || lifetime === undefined || varies) {
      this.keepable = false;
      return;
    }
    if (isPrivate) this.publicOnly = false;
    this.maxAge = Math.min(this.maxAge, lifetime - (Number(headers.age) || 0));
  }

  /** The response's Cache-Control. */
  header({ identity, credentials = identity !== undefined, failed, now }: ResponseOutcome): string {
    if (failed || this.calls === 0 || !this.keepable) return 'no-store';
    if (!credentials) return this.publicOnly && this.maxAge >= 1 ? `public, max-age=${Math.floor(this.maxAge)}` : 'no-store';
    if (!identity) return 'no-store';
    const maxAge = Math.floor(Math.min(this.maxAge, (identity.expiresAtMs - now) / 1000));
    return maxAge >= 1 ? `private, max-age=${maxAge}` : 'no-store';
  }
}

import type { UpstreamName } from '../../../shared/upstreams.js';

type Headers = Readonly<Record<string, string | string[] | undefined>>;

const seconds = (directive: string, header: string): number | undefined => {
  const match = new RegExp(`(?:^|[,\\s])${directive}=(\\d+)`).exec(header);
  return match ? Number(match[1]) : undefined;
};

/**
 * The cache policy of a GraphQL response, from the answers of its upstream calls: shareable only when
 * every one was `public` with a lifetime (`s-maxage`, else `max-age`, less its `Age`), for the least of
 * them, and none varied on a request header — so a CDN (and the gateway's response cache, shared by every
 * replica) may keep an anonymous catalogue query that long and nothing else. A whole response has no
 * Vary of its upstreams' to be matched by: an answer that differed by language or client is not shared.
 */
export class ResponseCachePolicy {
  private calls = 0;
  private shareable = true;
  private maxAge = Number.POSITIVE_INFINITY;
  /** The upstreams whose answers the response is made of: a change to one of them outdates it. */
  readonly upstreams = new Set<UpstreamName>();

  /** An upstream answer's headers. */
  note(upstream: UpstreamName, headers: Headers): void {
    this.calls += 1;
    this.upstreams.add(upstream);
    const header = String(headers['cache-control'] ?? '').toLowerCase();
    const lifetime = seconds('s-maxage', header) ?? seconds('max-age', header);
    const varies = headers.vary !== undefined && String(headers.vary).trim() !== '';
    if (!/(?:^|[,\s])public(?:$|[,\s])/.test(header) || /no-store|no-cache|private/.test(header) || lifetime === undefined || varies) {
      this.shareable = false;
      return;
    }
    this.maxAge = Math.min(this.maxAge, lifetime - (Number(headers.age) || 0));
  }

  /** The response's Cache-Control: public only for an anonymous request answered whole, without an error. */
  header(anonymous: boolean, failed: boolean): string {
    if (!anonymous || failed || this.calls === 0 || !this.shareable || this.maxAge < 1) return 'no-store';
    return `public, max-age=${Math.floor(this.maxAge)}`;
  }
}

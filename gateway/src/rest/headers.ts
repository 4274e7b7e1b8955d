import type { IncomingHttpHeaders } from 'node:http';
import type { Identity } from '../auth/identity.js';

/** Hop-by-hop headers (RFC 9110 7.6.1) and their common non-standard relatives: never forwarded. */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'te', 'trailer', 'upgrade', 'proxy-authenticate', 'proxy-authorization']);

/** Headers the gateway sets itself: whatever a client sent under these names is dropped. */
const GATEWAY_OWNED = new Set(['host', 'x-user-id', 'x-user-roles', 'x-request-id', 'x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host', 'forwarded', 'expect']);

type HeaderValue = string | string[] | undefined;

function connectionListed(headers: Record<string, HeaderValue>): Set<string> {
  const listed = new Set<string>();
  const connection = headers.connection;
  for (const value of Array.isArray(connection) ? connection : [connection ?? '']) {
    for (const name of value.split(',')) {
      const trimmed = name.trim().toLowerCase();
      if (trimmed !== '') listed.add(trimmed);
    }
  }
  return listed;
}

/** A copy without hop-by-hop headers, those named in `Connection`, and any in `drop`. */
function withoutHopByHop(headers: Record<string, HeaderValue>, drop: ReadonlySet<string> = new Set()): Record<string, string | string[]> {
  const listed = connectionListed(headers);
  const kept: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(headers)) {
    const lower = name.toLowerCase();
    if (value === undefined || HOP_BY_HOP.has(lower) || listed.has(lower) || drop.has(lower)) continue;
    kept[lower] = value;
  }
  return kept;
}

export interface ClientAddress {
  /** The address rate limits and logs attribute the request to. */
  readonly ip: string;
  /** The `X-Forwarded-For` chain to send on: trusted entries plus the peer that connected. */
  readonly forwardedFor: string;
}

/**
 * With `trustedHops` proxies in front (each appending to `X-Forwarded-For`), only the last
 * `trustedHops` entries were written by proxies we trust; anything before them is the client's claim.
 */
export function clientAddress(peer: string, forwardedForHeader: HeaderValue, trustedHops: number): ClientAddress {
  if (trustedHops === 0) return { ip: peer, forwardedFor: peer };
  const claimed = (Array.isArray(forwardedForHeader) ? forwardedForHeader.join(',') : (forwardedForHeader ?? ''))
    .split(',')
    .map((entry) => entry.trim())
    .filter((entry) => entry !== '');
  const trusted = claimed.slice(-trustedHops);
  return { ip: trusted[0] ?? peer, forwardedFor: [...trusted, peer].join(', ') };
}

export interface ForwardingContext {
  readonly identity?: Identity;
  readonly requestId: string;
  readonly client: ClientAddress;
  readonly proto: string;
  readonly host: string;
}

/** What the upstream receives: the client's end-to-end headers, then the gateway's own. */
export function upstreamRequestHeaders(incoming: IncomingHttpHeaders, context: ForwardingContext): Record<string, string | string[]> {
  const headers = withoutHopByHop(incoming, GATEWAY_OWNED);
  if (context.identity) {
    headers['x-user-id'] = context.identity.sub;
    headers['x-user-roles'] = context.identity.roles.join(',');
  }
  headers['x-request-id'] = context.requestId;
  headers['x-forwarded-for'] = context.client.forwardedFor;
  headers['x-forwarded-proto'] = context.proto;
  headers['x-forwarded-host'] = context.host;
  return headers;
}

/** CORS is the gateway's to answer: an upstream's own CORS headers never reach the client. */
const UPSTREAM_CORS = new Set([
  'access-control-allow-origin',
  'access-control-allow-credentials',
  'access-control-allow-methods',
  'access-control-allow-headers',
  'access-control-expose-headers',
  'access-control-max-age',
]);

/** What the client receives of the upstream's headers. */
export function clientResponseHeaders(upstream: Record<string, HeaderValue>): Record<string, string | string[]> {
  return withoutHopByHop(upstream, UPSTREAM_CORS);
}

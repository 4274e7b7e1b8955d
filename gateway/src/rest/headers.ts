import type { IncomingHttpHeaders } from 'node:http';

/** Hop-by-hop headers (RFC 9110 7.6.1) and their common non-standard relatives: never forwarded. */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'te', 'trailer', 'upgrade', 'proxy-authenticate', 'proxy-authorization']);

/** Headers the gateway sets itself: whatever a client sent under these names is dropped. */
const GATEWAY_OWNED = new Set(['host', 'authorization', 'x-user-id', 'x-user-roles', 'x-request-id', 'x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host', 'forwarded', 'expect', 'traceparent', 'tracestate']);

type HeaderValue = string | string[] | undefined;

/** The common case, no `Connection` header: nothing listed, and no set made for it. */
const NONE_LISTED: ReadonlySet<string> = new Set();

function connectionListed(headers: Record<string, HeaderValue>): ReadonlySet<string> {
  const connection = headers.connection;
  if (connection === undefined) return NONE_LISTED;
  // `keep-alive` (what every pooled upstream answer says) names a header that is hop-by-hop anyway.
  if (typeof connection === 'string' && HOP_BY_HOP.has(connection.trim().toLowerCase())) return NONE_LISTED;
  const listed = new Set<string>();
  for (const value of Array.isArray(connection) ? connection : [connection]) {
    for (const name of value.split(',')) {
      const trimmed = name.trim().toLowerCase();
      if (trimmed !== '') listed.add(trimmed);
    }
  }
  return listed;
}

/**
 * A copy without hop-by-hop headers, those named in `Connection`, any in `drop` — spelled with
 * underscores too (`x_user_id`): some servers read those as the dashed name — and any `also` matches.
 * One pass and one object: it runs twice for every request relayed.
 */
function withoutHopByHop(headers: Record<string, HeaderValue>, drop: ReadonlySet<string>, also?: RegExp): Record<string, string | string[]> {
  const listed = connectionListed(headers);
  const kept: Record<string, string | string[]> = {};
  for (const name of Object.keys(headers)) {
    const value = headers[name];
    if (value === undefined) continue;
    const lower = name.toLowerCase();
    const dashed = lower.includes('_') ? lower.replaceAll('_', '-') : lower;
    if (HOP_BY_HOP.has(dashed) || drop.has(dashed) || (listed !== NONE_LISTED && listed.has(lower)) || also?.test(lower) === true) continue;
    kept[lower] = value;
  }
  return kept;
}

/**
 * What the upstream receives of the client's headers: the end-to-end ones, less those the gateway sets
 * itself (identity, request id, forwarding, trace context: the upstream client adds its own) and
 * `Authorization` (passed on by the upstream client, on both faces).
 */
export function endToEndHeaders(incoming: IncomingHttpHeaders): Record<string, string | string[]> {
  return withoutHopByHop(incoming, GATEWAY_OWNED);
}

/**
 * Response headers that are the gateway's to set: its request id, its rate limits, CORS. An upstream's
 * own never reach the client (nor replace the gateway's).
 */
const GATEWAY_RESPONSE_HEADERS = new Set([
  'x-request-id',
  'ratelimit-limit',
  'ratelimit-remaining',
  'ratelimit-reset',
  'ratelimit-policy',
  'access-control-allow-origin',
  'access-control-allow-credentials',
  'access-control-allow-methods',
  'access-control-allow-headers',
  'access-control-expose-headers',
  'access-control-max-age',
]);

/** Directives that say who may keep an answer (a CDN in front, for everyone: `public`, `s-maxage`): replaced by `private`. */
const AUDIENCE_DIRECTIVE = /^(?:public|private|s-maxage)(?:\s*=.*)?$/is;

/** The directives of a Cache-Control value, split at the commas outside quoted strings. */
function directives(value: string): string[] {
  return (value.match(/(?:[^,"]|"(?:[^"\\]|\\.)*")+/g) ?? []).map((directive) => directive.trim()).filter((directive) => directive !== '');
}

/** Cache headers meant for the caches in front of the gateway alone. */
const CDN_CACHE_HEADER = /^(?:[a-z0-9-]*-)?cdn-cache-control$|^surrogate-control$/;

/**
 * The Cache-Control of an answer made for one caller: `private`, with the upstream's other directives
 * (`max-age`, `no-store`, `must-revalidate`…) kept and those for shared caches (`public`, `s-maxage`)
 * dropped, so a CDN never keeps it for anyone else, whatever the upstream said.
 */
export function privateCacheControl(upstream: HeaderValue): string {
  if (upstream === undefined) return 'private';
  const kept = directives([upstream].flat().join(',')).filter((directive) => !AUDIENCE_DIRECTIVE.test(directive));
  return ['private', ...kept].join(', ');
}

/**
 * What the client receives of the upstream's status and headers. A 204 carries no Content-Length (RFC
 * 9110 8.6: a client that believed one would wait for a body that never comes); an answer made for
 * one caller (`personal`) says `private`, varies on `Authorization`, and loses the headers a CDN in front would obey over
 * Cache-Control (RFC 9213's CDN-Cache-Control and its vendor forms, Surrogate-Control).
 */
export function clientResponseHeaders(status: number, upstream: Record<string, HeaderValue>, personal: boolean): Record<string, string | string[]> {
  const headers = withoutHopByHop(upstream, GATEWAY_RESPONSE_HEADERS, personal ? CDN_CACHE_HEADER : undefined);
  if (status === 204) delete headers['content-length'];
  if (personal) {
    headers['cache-control'] = privateCacheControl(headers['cache-control']);
    // A browser shared by two accounts must not answer the second from what the first was sent.
    headers.vary = headers.vary === undefined ? 'Authorization' : `${[headers.vary].flat().join(', ')}, Authorization`;
  }
  return headers;
}

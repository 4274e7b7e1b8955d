import type { IncomingMessage, ServerResponse } from 'node:http';
import { ANSWERED, type GatewayPlugin } from './pipeline/pipeline.js';

const ALLOWED_METHODS = 'GET, POST, PUT, PATCH, DELETE, OPTIONS';
/** Request headers browsers may send: ours, plus what Apollo clients and Sandbox send. */
const ALLOWED_HEADERS = 'Authorization, Content-Type, Accept, X-Request-ID, traceparent, tracestate, Apollo-Require-Preflight, X-Apollo-Operation-Name, Apollo-Query-Plan-Experimental';
/** Response headers a browser client may read (the rate-limit state included, to back off in time). */
const EXPOSED_HEADERS = 'X-Request-ID, WWW-Authenticate, Retry-After, Allow, RateLimit-Limit, RateLimit-Remaining, RateLimit-Reset, RateLimit-Policy';

const ORIGIN = /^([a-z][a-z0-9+.-]*):\/\/([^:/]+)(?::(\d+|\*))?$/i;

/**
 * An origin test from an entry of CORS_ORIGINS: exact, or with `*` as the host's first label (exactly
 * one label: `https://*.tv.example` allows `https://app.tv.example`, neither `https://tv.example` nor
 * `https://a.b.tv.example`) or as the port (any port, or none).
 */
function originMatcher(entry: string): (origin: string) => boolean {
  if (!entry.includes('*')) return (origin) => origin === entry;
  const [, scheme, host = '', port] = ORIGIN.exec(entry) ?? [];
  const suffix = host.startsWith('*.') ? host.slice(1) : undefined;
  return (origin) => {
    const [, originScheme, originHost = '', originPort] = ORIGIN.exec(origin) ?? [];
    if (originScheme !== scheme) return false;
    const hostMatches = suffix === undefined ? originHost === host : originHost.endsWith(suffix) && /^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$/i.test(originHost.slice(0, -suffix.length));
    return hostMatches && (port === '*' || originPort === port);
  };
}

export interface CorsSettings {
  readonly origins: readonly string[];
  /** Request headers allowed besides the gateway's own. */
  readonly allowedHeaders: readonly string[];
}
const PREFLIGHT_MAX_AGE_SECONDS = '600';

/**
 * CORS for the origins in CORS_ORIGINS, and for no other: an origin is only ever echoed when it is on
 * the list. Answers true when it has answered the request itself (a preflight: no authentication, no
 * upstream call).
 */
function applyCors(req: IncomingMessage, res: ServerResponse, isAllowed: (origin: string) => boolean, allowedHeaders: string): boolean {
  res.setHeader('vary', 'Origin');
  const origin = req.headers.origin;
  const allowed = typeof origin === 'string' && isAllowed(origin);
  const preflight = req.method === 'OPTIONS' && typeof origin === 'string' && req.headers['access-control-request-method'] !== undefined;
  if (allowed) res.setHeader('access-control-allow-origin', origin);
  if (!preflight) {
    if (allowed) res.setHeader('access-control-expose-headers', EXPOSED_HEADERS);
    return false;
  }
  if (allowed) {
    res.setHeader('access-control-allow-methods', ALLOWED_METHODS);
    res.setHeader('access-control-allow-headers', allowedHeaders);
    res.setHeader('access-control-max-age', PREFLIGHT_MAX_AGE_SECONDS);
  }
  res.writeHead(204).end();
  return true;
}

/** Whether CORS_ORIGINS lets a page of `origin` call the gateway. */
export function originPolicy(origins: readonly string[]): (origin: string) => boolean {
  const matchers = origins.map(originMatcher);
  return (origin) => matchers.some((matches) => matches(origin));
}

/** CORS for CORS_ORIGINS, before anything else looks at the request; nothing at all when none is configured. */
export function corsPlugin(settings: CorsSettings): GatewayPlugin {
  if (settings.origins.length === 0) return { name: 'cors' };
  const isAllowed = originPolicy(settings.origins);
  const allowedHeaders = [ALLOWED_HEADERS, ...settings.allowedHeaders].join(', ');
  return {
    name: 'cors',
    phases: {
      cors: ({ req, res }) => (applyCors(req, res, isAllowed, allowedHeaders) ? ANSWERED : undefined),
    },
  };
}

/** Adds to a response's Vary header instead of replacing it (CORS has already put Origin there). */
export function appendVary(res: ServerResponse, value: string | string[]): void {
  const existing = res.getHeader('vary');
  const names = [...(existing === undefined ? [] : String(existing).split(',')), ...(Array.isArray(value) ? value : value.split(','))]
    .map((name) => name.trim())
    .filter((name) => name !== '');
  const seen = new Set<string>();
  const unique = names.filter((name) => !seen.has(name.toLowerCase()) && seen.add(name.toLowerCase()));
  res.setHeader('vary', unique.join(', '));
}

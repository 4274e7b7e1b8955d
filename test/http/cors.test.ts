import { describe, expect, it } from 'vitest';
import { useStack } from '../helpers/stack.js';
import { userToken } from '../helpers/tokens.js';

const ALLOWED = 'https://tv.example';

describe('CORS with CORS_ORIGINS set', () => {
  const fx = useStack({ env: { CORS_ORIGINS: `${ALLOWED}, http://localhost:3000` } });

  const preflight = (path: string, origin: string, requestHeaders = 'authorization, content-type') =>
    fetch(`${fx.gateway.url}${path}`, { method: 'OPTIONS', headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': requestHeaders } });

  it.each(['/graphql', '/users/me', '/admin/users', '/auth/login', '/nowhere'])('answers a preflight on %s from an allowed origin with 204, no auth, no upstream call', async (path) => {
    const response = await preflight(path, ALLOWED);
    expect(response.status).toBe(204);
    expect(response.headers.get('access-control-allow-origin')).toBe(ALLOWED);
    expect(response.headers.get('access-control-allow-methods')).toContain('POST');
    const allowedHeaders = (response.headers.get('access-control-allow-headers') ?? '').toLowerCase();
    for (const header of ['authorization', 'content-type', 'x-request-id', 'traceparent', 'tracestate', 'apollo-require-preflight', 'x-apollo-operation-name']) expect(allowedHeaders).toContain(header);
    expect(Number(response.headers.get('access-control-max-age'))).toBeGreaterThan(0);
    expect(response.headers.get('vary')).toContain('Origin');
    expect(fx.upstreams.all()).toHaveLength(0);
  });

  it('gives an origin that is not listed no CORS headers, and never reflects an arbitrary origin', async () => {
    for (const origin of ['https://evil.example', 'https://tv.example.evil.example', 'null', `${ALLOWED}/`]) {
      const response = await preflight('/users/me', origin);
      expect(response.headers.get('access-control-allow-origin'), origin).toBeNull();
      expect(response.headers.get('access-control-allow-methods')).toBeNull();
      const simple = await fetch(`${fx.gateway.url}/search/global?q=a`, { headers: { origin } });
      expect(simple.headers.get('access-control-allow-origin'), origin).toBeNull();
    }
    expect(fx.upstreams.all().every((request) => request.method !== 'OPTIONS')).toBe(true);
  });

  it('marks responses to allowed origins, REST and GraphQL alike, and keeps the upstream’s own Vary', async () => {
    fx.upstreams.upstreams.users.behaviour = (_req, res) =>
      void res.writeHead(200, { 'content-type': 'application/json', vary: 'Accept-Encoding', 'access-control-allow-origin': '*' }).end('{}');
    const rest = await fetch(`${fx.gateway.url}/users/me`, { headers: { origin: ALLOWED, authorization: `Bearer ${await userToken()}` } });
    expect(rest.headers.get('access-control-allow-origin')).toBe(ALLOWED);
    expect(rest.headers.get('access-control-expose-headers')).toContain('X-Request-ID');
    // Origin (CORS), the upstream's own, and Authorization (an answer to a token), each once.
    expect(rest.headers.get('vary')).toBe('Origin, Accept-Encoding, Authorization');
    const denied = await fetch(`${fx.gateway.url}/users/me`, { headers: { origin: ALLOWED } });
    expect(denied.status).toBe(401);
    expect(denied.headers.get('access-control-allow-origin')).toBe(ALLOWED);
    const graphql = await fetch(`${fx.gateway.url}/graphql`, { method: 'POST', headers: { origin: ALLOWED, 'content-type': 'application/json' }, body: '{"query":"{ __typename }"}' });
    expect(graphql.headers.get('access-control-allow-origin')).toBe(ALLOWED);
    expect(graphql.headers.get('vary')).toMatch(/^Origin\b/);
  });
});

describe('CORS origin patterns, extra request headers, readable rate-limit headers', () => {
  const fx = useStack({ env: { CORS_ORIGINS: 'https://*.tv.example, http://localhost:*', CORS_ALLOWED_HEADERS: 'X-Device-ID, x-app-version' } });
  const allowedOrigin = async (origin: string) =>
    (await fetch(`${fx.gateway.url}/search/global?q=a`, { headers: { origin } })).headers.get('access-control-allow-origin');

  it.each(['https://app.tv.example', 'https://web-2.tv.example', 'http://localhost:5173', 'http://localhost'])('allows %s', async (origin) => {
    expect(await allowedOrigin(origin)).toBe(origin);
  });

  it.each(['https://tv.example', 'https://a.b.tv.example', 'http://app.tv.example', 'https://app.tv.example.evil.example', 'https://evil-tv.example', 'https://.tv.example', 'http://localhost.evil.example:3000', 'https://localhost:3000'])(
    'refuses %s: a pattern covers one label, its scheme, its host',
    async (origin) => {
      expect(await allowedOrigin(origin)).toBeNull();
    },
  );

  it('lets browsers send the configured headers and read the rate-limit state', async () => {
    const preflight = await fetch(`${fx.gateway.url}/graphql`, { method: 'OPTIONS', headers: { origin: 'https://app.tv.example', 'access-control-request-method': 'POST', 'access-control-request-headers': 'x-device-id' } });
    expect(preflight.status).toBe(204);
    expect(preflight.headers.get('access-control-allow-headers')).toMatch(/, X-Device-ID, x-app-version$/);
    const answer = await fetch(`${fx.gateway.url}/search/global?q=a`, { headers: { origin: 'https://app.tv.example' } });
    const exposed = (answer.headers.get('access-control-expose-headers') ?? '').split(', ');
    for (const header of ['RateLimit-Limit', 'RateLimit-Remaining', 'RateLimit-Reset', 'RateLimit-Policy', 'Retry-After', 'X-Request-ID']) expect(exposed).toContain(header);
  });
});

describe('CORS by default', () => {
  const development = useStack({ env: { NODE_ENV: 'development' } });
  const production = useStack({ env: { NODE_ENV: 'production' } });

  it('in development allows the web apps a developer runs on this machine, any port, and nothing else', async () => {
    for (const origin of ['http://localhost:3000', 'http://127.0.0.1:8080']) {
      expect((await fetch(`${development.gateway.url}/search/global?q=a`, { headers: { origin } })).headers.get('access-control-allow-origin'), origin).toBe(origin);
    }
    expect((await fetch(`${development.gateway.url}/search/global?q=a`, { headers: { origin: 'https://tv.example' } })).headers.get('access-control-allow-origin')).toBeNull();
  });

  it('in production allows none', async () => {
    expect((await fetch(`${production.gateway.url}/search/global?q=a`, { headers: { origin: 'http://localhost:3000' } })).headers.get('access-control-allow-origin')).toBeNull();
  });
});

describe('CORS without CORS_ORIGINS in production', () => {
  const fx = useStack({ env: { NODE_ENV: 'production' } });

  it('sends no CORS headers at all, and OPTIONS is an ordinary method', async () => {
    const response = await fetch(`${fx.gateway.url}/users/me`, {
      method: 'OPTIONS',
      headers: { origin: 'https://tv.example', 'access-control-request-method': 'GET', authorization: `Bearer ${await userToken()}` },
    });
    expect(response.status).toBe(405);
    expect(response.headers.get('access-control-allow-origin')).toBeNull();
    expect(fx.upstreams.all()).toHaveLength(0);
  });
});

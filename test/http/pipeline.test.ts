/**
 * The request pipeline where it reaches an upstream (dispatched in-process, through gateway.inject, to
 * recording upstreams on real sockets), and a REST-only gateway in a process of its own. What it does
 * without an upstream is in test/unit/pipeline.test.ts.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { useStack } from '../helpers/stack.js';
import { signToken, TEST_SECRET } from '../helpers/tokens.js';
import { importedModules, RECORD_IMPORTS_PRELOAD } from '../helpers/imports.js';
import { runToEnd } from '../helpers/process.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

describe('the pipeline', () => {
  const fx = useStack({ env: { RATE_LIMIT_PER_MINUTE: '100', CORS_ORIGINS: 'https://tv.example' } });

  it('dispatches in-process through the same phases as a socket does', async () => {
    const health = await fx.gateway.gateway.inject({ url: '/health', headers: { 'x-request-id': 'in-process' } });
    expect(health.statusCode).toBe(200);
    expect(health.json()).toEqual({ status: 'ok' });
    expect(health.headers['x-request-id']).toBe('in-process');
    expect(health.headers['ratelimit-limit']).toBeUndefined();
    const token = await signToken({ sub: '9', roles: ['user'] });
    const proxied = await fx.gateway.gateway.inject({ url: '/users/me?x=1', headers: { authorization: `Bearer ${token}`, origin: 'https://tv.example' } });
    expect(proxied.statusCode).toBe(200);
    expect(proxied.headers['access-control-allow-origin']).toBe('https://tv.example');
    expect(proxied.headers['ratelimit-limit']).toBe('100');
    expect(fx.upstreams.upstreams.users.requests.map((request) => [request.url, request.headers['x-user-id']])).toEqual([['/users/me?x=1', '9']]);
  });

  it('does not verify a token on a public route: the caller draws from its address’s bucket', async () => {
    const { verifier } = fx.gateway.gateway;
    const token = await signToken({ sub: 'public-1', roles: ['user'] });
    const cached = verifier.cache.size;
    const login = await fx.gateway.gateway.inject({ method: 'POST', url: '/auth/login', headers: { authorization: `Bearer ${token}` }, remoteAddress: '192.0.2.10' });
    expect(login.statusCode).toBe(200);
    expect(verifier.cache.size).toBe(cached);
    const anonymous = await fx.gateway.gateway.inject({ method: 'POST', url: '/auth/login', remoteAddress: '192.0.2.10' });
    expect(Number(anonymous.headers['ratelimit-remaining'])).toBe(Number(login.headers['ratelimit-remaining']) - 1);
    // The same token on a protected route is verified (once) and draws from the user's own bucket.
    const me = await fx.gateway.gateway.inject({ url: '/users/me', headers: { authorization: `Bearer ${token}` }, remoteAddress: '192.0.2.10' });
    expect(me.statusCode).toBe(200);
    expect(verifier.cache.size).toBe(cached + 1);
    expect(me.headers['ratelimit-remaining']).toBe('99');
    expect(fx.upstreams.upstreams.auth.requests[0]?.headers.authorization).toBe(`Bearer ${token}`);
  });
});

describe('a REST-only gateway', () => {
  it('is built without loading GraphQL Mesh, Apollo, graphql-shield or (without REDIS_URL) the Redis client, and /graphql routes nowhere', () => {
    const record = join(mkdtempSync(join(tmpdir(), 'imports-')), 'imports.txt');
    const output = runToEnd('the REST-only gateway’s process to print its answers and exit', process.execPath, ['--import', 'tsx', '--import', RECORD_IMPORTS_PRELOAD, 'test/fixtures/rest-only-gateway.ts'], {
      cwd: ROOT,
      env: { ...process.env, RECORD_IMPORTS: record, JWT_SECRET_KEY: TEST_SECRET },
    });
    expect(JSON.parse(output)).toMatchObject({ health: 200, graphql: 404, graphqlCode: 'NOT_FOUND' });
    expect(JSON.parse(output).steps).not.toContain('face:graphql');
    const imported = importedModules(record);
    expect(imported).toContain('undici');
    expect(imported.filter((specifier) => /@graphql-mesh|@apollo\/server|graphql-shield|graphql-middleware|^graphql$|\/graphql\/handler|^ioredis$/.test(specifier))).toEqual([]);
  });
});

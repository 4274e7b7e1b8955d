/** The request pipeline: its phases, per-request state, own endpoints, and who gets authenticated. */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { RequestState } from '../../gateway/src/pipeline/state.js';
import { useStack } from '../helpers/stack.js';
import { startGateway } from '../helpers/gateway.js';
import { signToken, TEST_SECRET } from '../helpers/tokens.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

describe('per-request state', () => {
  it('is set once, by the phase that owns an entry, and never read before it', () => {
    const state = new RequestState();
    expect(() => state.get('requestId')).toThrow('request state "requestId" is not set yet');
    expect(state.peek('requestId')).toBeUndefined();
    state.set('requestId', 'r1');
    expect(state.get('requestId')).toBe('r1');
    expect(() => state.set('requestId', 'r2')).toThrow('request state "requestId" is already set');
    expect(state.get('requestId')).toBe('r1');
  });
});

describe('the pipeline', () => {
  const fx = useStack({ env: { RATE_LIMIT_PER_MINUTE: '100', CORS_ORIGINS: 'https://tv.example' } });

  it('runs named phases in order, one concern a plugin', () => {
    expect(fx.gateway.gateway.pipeline.steps).toEqual([
      'onRequest:trace',
      'onRequest:request-id',
      'onRequest:lifecycle',
      'onRequest:protocol',
      'onRequest:forwarded',
      'cors:cors',
      'ownEndpoints:own-endpoints',
      'route:routing',
      'authenticate:authentication',
      'rateLimit:rate-limit',
      'face:faces',
    ]);
  });

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

  it('answers its own endpoints from a table: GET and HEAD only', async () => {
    for (const path of ['/health', '/ready', '/metrics']) {
      const head = await fx.gateway.gateway.inject({ method: 'HEAD', url: path });
      expect(head.statusCode, path).toBe(200);
      const post = await fx.gateway.gateway.inject({ method: 'POST', url: path });
      expect(post.statusCode, path).toBe(405);
      expect(post.headers.allow).toBe('GET, HEAD');
      expect(post.json()).toMatchObject({ code: 'METHOD_NOT_ALLOWED', instance: path });
    }
    expect(fx.upstreams.all().every((request) => request.url === '/health')).toBe(true);
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

  it('does not verify a token on a path that routes nowhere', async () => {
    const token = await signToken({ sub: 'nowhere-1', roles: ['user'] });
    const cached = fx.gateway.gateway.verifier.cache.size;
    expect((await fx.gateway.gateway.inject({ url: '/nowhere', headers: { authorization: `Bearer ${token}` } })).statusCode).toBe(404);
    expect(fx.gateway.gateway.verifier.cache.size).toBe(cached);
  });
});

describe('a REST-only gateway', () => {
  it('is built without loading GraphQL Mesh, Apollo or graphql-shield, and /graphql routes nowhere', () => {
    const record = join(mkdtempSync(join(tmpdir(), 'imports-')), 'imports.txt');
    const output = execFileSync(process.execPath, ['--import', 'tsx', '--import', './test/fixtures/record-imports.mjs', 'test/fixtures/rest-only-gateway.ts'], {
      cwd: ROOT,
      env: { ...process.env, RECORD_IMPORTS: record, JWT_SECRET_KEY: TEST_SECRET },
      encoding: 'utf8',
    });
    expect(JSON.parse(output)).toMatchObject({ health: 200, graphql: 404, graphqlCode: 'NOT_FOUND' });
    expect(JSON.parse(output).steps).not.toContain('face:graphql');
    const imported = readFileSync(record, 'utf8').split('\n');
    expect(imported).toContain('undici');
    expect(imported.filter((specifier) => /@graphql-mesh|@apollo\/server|graphql-shield|graphql-middleware|^graphql$|\/graphql\/handler/.test(specifier))).toEqual([]);
  });

  it('still serves REST in-process with a socket-free gateway', async () => {
    const running = await startGateway({ auth: 'http://127.0.0.1:9', users: 'http://127.0.0.1:9', ondemand: 'http://127.0.0.1:9', livetv: 'http://127.0.0.1:9', rights: 'http://127.0.0.1:9', search: 'http://127.0.0.1:9' }, {}, { graphql: false });
    try {
      expect(running.gateway.graphql).toBeUndefined();
      expect((await running.gateway.inject('/search/global?q=a')).statusCode).toBe(503);
    } finally {
      await running.close();
    }
  });
});

/** The request pipeline in-process: its phases, per-request state, own endpoints, and who gets authenticated. */
import { describe, expect, it } from 'vitest';
import { RequestState } from '../../gateway/src/pipeline/state.js';
import { useInProcessGateway } from '../helpers/gateway.js';
import { upstreamCallsIn } from '../helpers/metrics.js';
import { signToken } from '../helpers/tokens.js';

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
  const gateway = useInProcessGateway({ RATE_LIMIT_PER_MINUTE: '100', CORS_ORIGINS: 'https://tv.example' });

  it('runs named phases in order, one concern a plugin', () => {
    expect(gateway.pipeline.steps).toEqual([
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

  it('answers its own endpoints from a table: GET and HEAD only', async () => {
    for (const path of ['/health', '/metrics']) {
      const head = await gateway.inject({ method: 'HEAD', url: path });
      expect(head.statusCode, path).toBe(200);
    }
    for (const path of ['/health', '/ready', '/metrics']) {
      const post = await gateway.inject({ method: 'POST', url: path });
      expect(post.statusCode, path).toBe(405);
      expect(post.headers.allow).toBe('GET, HEAD');
      expect(post.json()).toMatchObject({ code: 'METHOD_NOT_ALLOWED', instance: path });
    }
    expect(await upstreamCallsIn(gateway)).toBe(0);
  });

  it('does not verify a token on a path that routes nowhere', async () => {
    const token = await signToken({ sub: 'nowhere-1', roles: ['user'] });
    const cached = gateway.verifier.cache.size;
    expect((await gateway.inject({ url: '/nowhere', headers: { authorization: `Bearer ${token}` } })).statusCode).toBe(404);
    expect(gateway.verifier.cache.size).toBe(cached);
  });
});

describe('a REST-only gateway', () => {
  const gateway = useInProcessGateway({}, { graphql: false });

  it('has no GraphQL face: /graphql routes nowhere', async () => {
    expect(gateway.graphql).toBeUndefined();
    expect(gateway.pipeline.steps).toContain('face:faces');
    const graphql = await gateway.inject({ method: 'POST', url: '/graphql', headers: { 'content-type': 'application/json' }, payload: { query: '{ plans { id } }' } });
    expect(graphql.statusCode).toBe(404);
    expect(graphql.json()).toMatchObject({ code: 'NOT_FOUND' });
  });

  it('still serves REST: its face judges a request before any upstream call', async () => {
    const user = await signToken({ sub: '5', roles: ['user'] });
    const forbidden = await gateway.inject({ url: '/admin/users', headers: { authorization: `Bearer ${user}` } });
    expect(forbidden.statusCode).toBe(403);
    expect(forbidden.json()).toMatchObject({ code: 'FORBIDDEN', detail: 'Admin access required' });
    expect(await upstreamCallsIn(gateway)).toBe(0);
  });
});

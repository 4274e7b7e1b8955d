import { describe, expect, it } from 'vitest';
import { useStack } from '../helpers/stack.js';

const fx = useStack({ upstreams: 'reference' });

describe('gateway liveness and readiness', () => {
  it('answers /health with 200 {"status":"ok"}', async () => {
    const response = await fetch(`${fx.gateway.url}/health`);
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ status: 'ok' });
  });

  it('answers /ready with 200 while every upstream answers its health check', async () => {
    const response = await fetch(`${fx.gateway.url}/ready`);
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({
      status: 'ready',
      services: { auth: 'ok', users: 'ok', ondemand: 'ok', livetv: 'ok', rights: 'ok', search: 'ok' },
      // No REDIS_URL: nothing shared, the bus is this process's own.
      shared: { bus: 'local' },
    });
  });

  it('answers unknown paths with a problem+json 404 carrying the request id', async () => {
    const response = await fetch(`${fx.gateway.url}/nothing/here?x=1`, { headers: { 'x-request-id': 'abc-123' } });
    expect(response.status).toBe(404);
    expect(response.headers.get('content-type')).toBe('application/problem+json');
    expect(response.headers.get('x-request-id')).toBe('abc-123');
    expect(await response.json()).toEqual({
      type: 'about:blank',
      title: 'Not Found',
      status: 404,
      code: 'NOT_FOUND',
      detail: 'No route matches this path',
      instance: '/nothing/here',
      requestId: 'abc-123',
    });
  });

  it('replaces a request id that is not a plain short token', async () => {
    for (const offered of ['has spaces', 'x'.repeat(200), '<script>alert(1)</script>', 'a/b', '']) {
      const response = await fetch(`${fx.gateway.url}/health`, { headers: { 'x-request-id': offered } });
      const echoed = response.headers.get('x-request-id') ?? '';
      expect(echoed).not.toBe(offered);
      expect(echoed).toMatch(/^[0-9a-f-]{36}$/);
    }
  });
});

describe('readiness while upstreams fail', () => {
  const clock = { now: Date.now() };
  const fx = useStack({ upstreams: 'reference', gatewayOptions: { now: () => clock.now } });

  it('answers /ready with 200 "degraded", naming the services that fail, while others still serve', async () => {
    await fx.services.services.rights.close();
    await fx.services.services.search.close();
    // A round of upstream checks stands for 2 s: the next one, 2 s later, sees the services gone.
    clock.now += 2000;
    const response = await fetch(`${fx.gateway.url}/ready`);
    expect(response.status).toBe(200);
    const body = (await response.json()) as Record<string, unknown>;
    expect(body).toEqual({
      status: 'degraded',
      failing: ['rights', 'search'],
      services: { auth: 'ok', users: 'ok', ondemand: 'ok', livetv: 'ok', rights: 'unreachable', search: 'unreachable' },
      shared: { bus: 'local' },
    });
    expect(JSON.stringify(body)).not.toContain('127.0.0.1');
  });
});

/** Readiness a load balancer can use: cached upstream checks, degraded or strict, and the admin port. */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startGateway, type RunningGateway } from '../helpers/gateway.js';
import { freePortBlock } from '../helpers/ports.js';
import { startRecordingUpstreams, type RecordingUpstreams } from '../helpers/recording-upstream.js';
import { TEST_SECRET } from '../helpers/tokens.js';

let upstreams: RecordingUpstreams;

beforeAll(async () => {
  upstreams = await startRecordingUpstreams();
});
afterAll(async () => upstreams.close());
beforeEach(() => upstreams.reset());

const healthChecks = () => upstreams.all().filter((request) => request.url === '/health').length;

describe('/ready', () => {
  // The clock of the readiness rounds stands still until a test moves it.
  const clock = { now: Date.now() };
  let running: RunningGateway;
  beforeAll(async () => {
    running = await startGateway(upstreams.urls, { JWT_SECRET_KEY: TEST_SECRET }, { now: () => clock.now });
  });
  afterAll(async () => running.close());

  it('answers rapid probes, GET and HEAD, from one round of upstream checks every 2 s, not one round each', async () => {
    const probe = (method: string) => fetch(`${running.url}/ready`, { method }).then((response) => response.status);
    const answers = await Promise.all(Array.from({ length: 200 }, (_, i) => probe(i % 2 === 0 ? 'GET' : 'HEAD')));
    expect(new Set(answers)).toEqual(new Set([200]));
    // Six upstreams, one check each: one round.
    expect(healthChecks()).toBe(6);
    clock.now += 1999;
    expect(await probe('GET')).toBe(200);
    expect(healthChecks()).toBe(6);
    clock.now += 1;
    expect(await probe('HEAD')).toBe(200);
    expect(healthChecks()).toBe(12);
  });

  it('is 503 while any upstream is down with READY_REQUIRES_ALL_UPSTREAMS=true', async () => {
    const strict = await startGateway({ ...upstreams.urls, search: `http://127.0.0.1:${await freePortBlock(1)}` }, { JWT_SECRET_KEY: TEST_SECRET, READY_REQUIRES_ALL_UPSTREAMS: 'true' });
    try {
      const response = await fetch(`${strict.url}/ready`);
      expect(response.status).toBe(503);
      expect(await response.json()).toMatchObject({ code: 'UPSTREAM_UNAVAILABLE', detail: 'Upstream services not ready: search', failing: ['search'] });
    } finally {
      await strict.close();
    }
  });
});

describe('ADMIN_PORT', () => {
  let running: RunningGateway;
  let adminUrl: string;
  beforeAll(async () => {
    running = await startGateway(upstreams.urls, { JWT_SECRET_KEY: TEST_SECRET, ADMIN_PORT: String(await freePortBlock(1)) });
    adminUrl = running.gateway.adminUrl ?? '';
  });
  afterAll(async () => running.close());

  it('serves /metrics, /health and /ready with details on the admin port only', async () => {
    expect((await fetch(`${adminUrl}/metrics`)).status).toBe(200);
    expect((await fetch(`${adminUrl}/health`)).status).toBe(200);
    expect(await (await fetch(`${adminUrl}/ready`)).json()).toMatchObject({ status: 'ready', services: { auth: 'ok' } });
    expect((await fetch(`${adminUrl}/users/me`)).status).toBe(404);
    expect(upstreams.all().filter((request) => request.url !== '/health')).toEqual([]);
  });

  it('leaves the public port liveness and a bare readiness, without metrics or the service layout', async () => {
    expect((await fetch(`${running.url}/health`)).status).toBe(200);
    expect(await (await fetch(`${running.url}/ready`)).json()).toEqual({ status: 'ready' });
    const metrics = await fetch(`${running.url}/metrics`);
    expect(metrics.status).toBe(404);
    expect(await metrics.text()).not.toContain('gateway_');
  });

  it('must be another port than PORT', async () => {
    await expect(startGateway(upstreams.urls, { JWT_SECRET_KEY: TEST_SECRET, PORT: '4999', ADMIN_PORT: '4999' })).rejects.toThrow('ADMIN_PORT must be another port than PORT');
  });
});

import { createServer } from 'node:net';
import { createServer as createHttpServer } from 'node:http';
import { describe, expect, it, onTestFinished } from 'vitest';
import { UPSTREAM_NAMES, servicePort } from '../../shared/upstreams.js';
import { allGone, descendants, launcher, npmRun } from '../helpers/launcher.js';
import { freePortBlock } from '../helpers/ports.js';
import { graphql } from '../helpers/graphql.js';
import { login } from '../helpers/login.js';
import { OtlpReceiver, traceChain } from '../helpers/otlp-receiver.js';

// Whole-stack process tests on a two-core machine shared with the other suites: nothing here waits for
// a fixed time, only for the stack to be ready or to exit (the timeout only keeps a hung run bounded).
describe('npm start', { timeout: 240_000 }, () => {
  it('runs six services and the gateway, prints URLs and logins, traces a request across processes, and stops cleanly on Ctrl-C', async () => {
    const base = await freePortBlock(7);
    const port = base + 6;
    const receiver = await OtlpReceiver.start();
    onTestFinished(() => receiver.close());
    const started = npmRun('start', { SERVICES_BASE_PORT: String(base), PORT: String(port), OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url, OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json', OTEL_BSP_SCHEDULE_DELAY: '50' });
    await started.banner();

    const text = started.output();
    expect(text).toContain(`http://127.0.0.1:${port}`);
    for (const name of UPSTREAM_NAMES) expect(text).toContain(`http://127.0.0.1:${servicePort(name, base)}`);
    for (const login of ['alice  / alice-password', 'bob    / bob-password', 'admin  / admin-password']) expect(text).toContain(login);

    expect(text).toMatch(/gateway ready in \d+\.\d s/);
    for (const name of UPSTREAM_NAMES) expect(text).toMatch(new RegExp(`${name} ready in \\d+\\.\\d s`));
    expect(await (await fetch(`http://127.0.0.1:${port}/health`)).json()).toEqual({ status: 'ok' });
    // The launcher waited for every service's own health check: the gateway finds them all at once.
    expect((await fetch(`http://127.0.0.1:${port}/ready`)).status, started.output()).toBe(200);
    for (const name of UPSTREAM_NAMES) {
      expect((await fetch(`http://127.0.0.1:${servicePort(name, base)}/health`)).status).toBe(200);
    }

    // Every process exports its spans: gateway → rights → on-demand is one trace.
    const gateway = `http://127.0.0.1:${port}`;
    const answer = await graphql(gateway, 'query Shelf { movies(limit: 2) { items { id entitlement { canPlay } } } }', { token: await login(gateway, 'bob'), headers: { 'x-request-id': 'whole-stack' } });
    expect(answer.errors).toBeUndefined();
    expect(await traceChain(receiver, 'whole-stack', 'ondemand-service', 'GET /ondemand/movies/batch')).toEqual([
      'tv-gateway: POST /graphql',
      'tv-gateway: graphql.execute',
      'tv-gateway: graphql.batch entitlements',
      'tv-gateway: GET /subscriptions/entitlements',
      'rights-service: GET /subscriptions/entitlements',
      'rights-service: GET on-demand',
      'ondemand-service: GET /ondemand/movies/batch',
    ]);

    const pids = descendants(started.child.pid as number);
    expect(pids.length, started.output()).toBeGreaterThanOrEqual(8);
    process.kill(-(started.child.pid as number), 'SIGINT');
    expect(await started.exited(), started.output()).toBe(0);
    await allGone(pids);
  });

  it('start:services runs the six services alone; SIGTERM to npm alone stops every process, exit 0', async () => {
    const base = await freePortBlock(7);
    const started = npmRun('start:services', { SERVICES_BASE_PORT: String(base), PORT: String(base + 6) });
    await started.banner();
    expect(started.output()).not.toContain('Gateway');
    expect((await fetch(`http://127.0.0.1:${servicePort('ondemand', base)}/ondemand/movies?limit=1`)).status).toBe(200);
    await expect(fetch(`http://127.0.0.1:${base + 6}/health`)).rejects.toThrow();
    const pids = descendants(started.child.pid as number);
    expect(pids.length, started.output()).toBeGreaterThanOrEqual(7);
    started.child.kill('SIGTERM');
    expect(await started.exited(), started.output()).toBe(0);
    await allGone(pids);
    await expect(fetch(`http://127.0.0.1:${base}/health`)).rejects.toThrow();
  });

  it('refuses to start over a port already taken, even by something that answers /health, and starts nothing', async () => {
    const base = await freePortBlock(7);
    // Something else holds the live TV service's port, and a stale "gateway" answers /health on the gateway's.
    const squatter = createServer();
    const stale = createHttpServer((_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end('{"status":"ok"}'));
    await new Promise<void>((resolve) => squatter.listen(servicePort('livetv', base), '127.0.0.1', resolve));
    await new Promise<void>((resolve) => stale.listen(base + 6, '127.0.0.1', resolve));
    try {
      const started = launcher({ SERVICES_BASE_PORT: String(base), PORT: String(base + 6) });
      expect(await started.exited(), started.output()).toBe(1);
      expect(started.output()).toContain(`start failed: 127.0.0.1:${servicePort('livetv', base)} (livetv), 127.0.0.1:${base + 6} (gateway) already in use`);
      expect(started.output()).not.toMatch(/ ready in \d/);
      await expect(fetch(`http://127.0.0.1:${base}/health`)).rejects.toThrow();
    } finally {
      squatter.close();
      stale.close();
    }
  });

  it('fails the launch, with what the failing process printed, when one keeps exiting while starting (5 times in a row)', async () => {
    const base = await freePortBlock(7);
    // A setting the gateway refuses at its start (not the launcher): it exits at once, at each restart too.
    const started = launcher({ SERVICES_BASE_PORT: String(base), PORT: String(base + 6), UPSTREAM_TIMEOUT_MS: 'abc' });
    expect(await started.exited(), started.output()).toBe(1);
    for (const [nth, delay] of [[1, 0.25], [2, 0.5], [3, 1], [4, 2]]) {
      expect(started.output()).toContain(`gateway exited (code 1) before it was ready; restarting in ${delay} s (restart ${nth})\n`);
    }
    expect(started.output()).not.toContain('(restart 5)');
    expect(started.output()).toContain('start failed: gateway exited (code 1) before it was ready, 5 times in a row; it printed:\ngateway: configuration error: UPSTREAM_TIMEOUT_MS must be a whole number');
    expect(started.output()).not.toContain('Ctrl-C stops everything');
    await expect(fetch(`http://127.0.0.1:${base + 6}/health`)).rejects.toThrow();
  });

  it('says in one line what is wrong with a setting the launcher itself reads', async () => {
    const started = launcher({ AUTH_TOKEN_ALGORITHM: 'RS1' });
    expect(await started.exited()).toBe(1);
    expect(started.output()).toContain('start failed: AUTH_TOKEN_ALGORITHM must be HS256 or ES256');
    expect(started.output()).not.toMatch(/\bat .+:\d+:\d+/);
  });

  it('names what was still starting when START_TIMEOUT_MS runs out, and stops everything', async () => {
    const base = await freePortBlock(7);
    const started = launcher({ SERVICES_BASE_PORT: String(base), PORT: String(base + 6), START_TIMEOUT_MS: '1' });
    expect(await started.exited(), started.output()).toBe(1);
    expect(started.output()).toMatch(/start failed: still starting after 0\.001 s \(START_TIMEOUT_MS\): .*gateway/);
    await expect(fetch(`http://127.0.0.1:${base + 6}/health`)).rejects.toThrow();
  });
});

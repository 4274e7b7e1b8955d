import { mkdtempSync, writeFileSync } from 'node:fs';
import { createConnection, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { Client } from 'undici';
import { describe, expect, it, onTestFinished } from 'vitest';
import { answersPing } from '../../scripts/lib/redis.js';
import { UPSTREAM_NAMES, servicePort } from '../../shared/upstreams.js';
import { allGone, commandOf, descendants, environmentOf, launcher, npmRun } from '../helpers/launcher.js';
import { login } from '../helpers/login.js';
import { sample, storeConnected } from '../helpers/metrics.js';
import { freePortBlock } from '../helpers/ports.js';
import { rawGet } from '../helpers/raw-http.js';
import { startRedis } from '../helpers/redis.js';
import { eventually } from '../helpers/wait.js';

const REPLICAS = 3;

/** How many GET /health a gateway has answered 200, as its /metrics counts them. */
async function healthAnswered(url: string): Promise<number> {
  return sample(await (await fetch(`${url}/metrics`)).text(), 'gateway_http_requests_total', { route: '/health', method: 'GET', status: '200' }) ?? 0;
}

/** What each of `urls` answered to /health since `before` was read. */
async function healthSince(urls: readonly string[], before: readonly number[]): Promise<number[]> {
  return Promise.all(urls.map(async (url, i) => (await healthAnswered(url)) - (before[i] ?? 0)));
}

/** A client that gives up at once on a server that is not there (no reconnection, no retry). */
function redisClient(url: string, password?: string): Redis {
  const client = new Redis(url, { maxRetriesPerRequest: 0, retryStrategy: () => null, ...(password === undefined ? {} : { password }) });
  client.on('error', () => undefined);
  onTestFinished(() => client.disconnect());
  return client;
}

// Whole-stack process tests, as test/http/start.test.ts: nothing waits for a fixed time, only for the
// stack to be ready or to exit.
describe('npm run start:cluster', { timeout: 240_000 }, () => {
  it('runs the services, a password-protected redis-server and three replicas behind one entry; connections go round-robin; a Redis that dies is started again; SIGTERM stops everything', async () => {
    const base = await freePortBlock(7 + REPLICAS);
    const port = base + 6;
    const entry = `http://127.0.0.1:${port}`;
    const replicas = Array.from({ length: REPLICAS }, (_, i) => `http://127.0.0.1:${port + i + 1}`);
    const started = npmRun('start:cluster', { SERVICES_BASE_PORT: String(base), PORT: String(port), GATEWAY_REPLICAS: String(REPLICAS), REDIS_URL: '', REDIS_URL_FILE: '' });
    await started.banner();

    const text = started.output();
    expect(text).toContain(`Gateway     ${entry}   (a TCP balancer, round-robin over 3 replicas;`);
    for (const [i, url] of replicas.entries()) expect(text).toContain(`gateway-${i + 1}   ${url}`);
    for (const name of UPSTREAM_NAMES) expect(text).toContain(`http://127.0.0.1:${servicePort(name, base)}`);
    expect(text).toContain('alice  / alice-password');
    expect(text).toMatch(/redis ready in \d+\.\d s/);
    const redisPort = Number(/ {2}Redis {7}redis:\/\/127\.0\.0\.1:(\d+) {3}\(started for the replicas, a password is set\)/.exec(text)?.[1]);
    expect(redisPort, text).toBeGreaterThan(0);

    // Each replica serves on its own port, and has the Redis started for it, its password with it.
    for (const url of replicas) expect((await fetch(`${url}/health`)).status).toBe(200);
    const pids = descendants(started.child.pid as number);
    const replicaPids = pids.filter((pid) => commandOf(pid).some((part) => part.endsWith('gateway/src/main.js')));
    expect(replicaPids).toHaveLength(REPLICAS);
    const { REDIS_URL, REDIS_PASSWORD } = environmentOf(replicaPids[0] as number);
    expect(REDIS_URL).toBe(`redis://127.0.0.1:${redisPort}`);
    expect(REDIS_PASSWORD).toMatch(/^[0-9a-f]{64}$/);
    for (const pid of replicaPids) expect(environmentOf(pid)).toMatchObject({ REDIS_URL, REDIS_PASSWORD });
    expect(text).not.toContain(REDIS_PASSWORD);
    await expect(redisClient(REDIS_URL as string).ping()).rejects.toThrow(/NOAUTH/);
    expect(await redisClient(REDIS_URL as string, REDIS_PASSWORD).ping()).toBe('PONG');
    for (const url of replicas) await storeConnected(url);

    // Six requests through the entry, each over a new connection: two reach each replica.
    let before = await Promise.all(replicas.map(healthAnswered));
    for (let i = 0; i < 6; i++) expect((await rawGet(entry, '/health')).status).toBe(200);
    expect(await healthSince(replicas, before)).toEqual([2, 2, 2]);

    // A keep-alive connection stays on the replica it reached, as behind a Kubernetes Service.
    const connection = new Client(entry, { pipelining: 1 });
    onTestFinished(() => connection.close());
    before = await Promise.all(replicas.map(healthAnswered));
    for (let i = 0; i < 3; i++) {
      const response = await connection.request({ path: '/health', method: 'GET' });
      await response.body.dump();
      expect(response.statusCode).toBe(200);
    }
    expect((await healthSince(replicas, before)).sort()).toEqual([0, 0, 3]);

    const token = await login(entry, 'alice');
    expect((await fetch(`${entry}/users/me`, { headers: { authorization: `Bearer ${token}` } })).status).toBe(200);

    // The launcher, the six services, redis-server and the replicas: all below npm, all gone after.
    expect(pids.length, text).toBeGreaterThanOrEqual(1 + UPSTREAM_NAMES.length + 1 + REPLICAS);
    const redisPids = pids.filter((pid) => commandOf(pid).some((part) => part.startsWith('redis-server')));
    expect(redisPids).toHaveLength(1);

    // Redis dies: it is started again on its port, with its password, and the replicas find it again.
    process.kill(redisPids[0] as number, 'SIGKILL');
    await eventually(() => `redis to serve again; the launcher printed:\n${started.output()}`, () => /^redis serving again in \d+\.\d s$/m.test(started.output()));
    expect(started.output()).toContain('redis exited (signal SIGKILL); restarting in 0.25 s (restart 1)\n');
    expect(await answersPing(createConnection(redisPort, '127.0.0.1'), REDIS_PASSWORD)).toBe(true);
    for (const url of replicas) await storeConnected(url);

    // SIGTERM to npm alone (the keep-alive connection still open): it passes it on to the launcher.
    started.child.kill('SIGTERM');
    expect(await started.exited(), started.output()).toBe(0);
    await allGone(pids);
    expect(await answersPing(createConnection(redisPort, '127.0.0.1'))).toBe(false);
    await expect(fetch(`${entry}/health`)).rejects.toThrow();
  });

  it('uses the Redis of REDIS_URL, its password file passed on, and starts none; stopping leaves that Redis running', async () => {
    const redis = await startRedis({ password: 'external-redis-password' });
    onTestFinished(() => redis.stop());
    const secrets = mkdtempSync(join(tmpdir(), 'cluster-redis-'));
    writeFileSync(join(secrets, 'password'), 'external-redis-password\n');
    const base = await freePortBlock(8);
    const port = base + 6;
    const started = launcher({ SERVICES_BASE_PORT: String(base), PORT: String(port), GATEWAY_REPLICAS: '1', REDIS_URL: redis.url, REDIS_PASSWORD_FILE: join(secrets, 'password') }, ['--cluster']);
    await started.banner();
    expect(started.output()).toContain('  Redis       REDIS_URL of the environment, shared by the replicas');
    expect(started.output()).not.toMatch(/redis ready in|redis-server|external-redis-password/);
    await storeConnected(`http://127.0.0.1:${port + 1}`);
    expect((await fetch(`http://127.0.0.1:${port}/health`)).status).toBe(200);
    started.child.kill('SIGTERM');
    expect(await started.exited(), started.output()).toBe(0);
    const { port: redisPort } = new URL(redis.url);
    expect(await answersPing(createConnection(Number(redisPort), '127.0.0.1'), 'external-redis-password')).toBe(true);
  });

  it.each([
    ['0', 'GATEWAY_REPLICAS must be at least 1 (got "0")'],
    ['17', 'GATEWAY_REPLICAS must be at most 16 (got "17")'],
    ['abc', 'GATEWAY_REPLICAS must be a whole number from 1 to 16 (got "abc")'],
    ['2.5', 'GATEWAY_REPLICAS must be a whole number from 1 to 16 (got "2.5")'],
  ])('refuses GATEWAY_REPLICAS=%s at once, saying why, and starts nothing', async (value, message) => {
    const started = launcher({ GATEWAY_REPLICAS: value }, ['--cluster']);
    expect(await started.exited(), started.output()).toBe(1);
    expect(started.output()).toBe(`start failed: ${message}\n`);
  });

  it('checks every port it needs, the entry’s and each replica’s, before it starts anything', async () => {
    const base = await freePortBlock(7 + REPLICAS);
    const port = base + 6;
    const squatters = [port, port + 2].map((taken) => {
      const squatter = createServer();
      onTestFinished(() => new Promise<void>((resolve) => squatter.close(() => resolve())));
      return new Promise<void>((resolve) => squatter.listen(taken, '127.0.0.1', resolve));
    });
    await Promise.all(squatters);
    const started = launcher({ SERVICES_BASE_PORT: String(base), PORT: String(port), GATEWAY_REPLICAS: String(REPLICAS) }, ['--cluster']);
    expect(await started.exited(), started.output()).toBe(1);
    expect(started.output()).toContain(`start failed: 127.0.0.1:${port} (balancer), 127.0.0.1:${port + 2} (gateway-2) already in use`);
    expect(started.output()).not.toMatch(/ ready in \d/);
  });
});

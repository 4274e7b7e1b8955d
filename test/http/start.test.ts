import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { createServer as createHttpServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import { restartDelay } from '../../scripts/lib/supervisor.js';
import { UPSTREAM_NAMES, servicePort, type UpstreamName } from '../../shared/upstreams.js';
import { allGone, commandOf, descendants, environmentOf, launcher, launcherProcess, npmRun, serviceProcess } from '../helpers/launcher.js';
import { freePortBlock } from '../helpers/ports.js';
import { graphql, onlyError } from '../helpers/graphql.js';
import { login } from '../helpers/login.js';
import { OtlpReceiver, traceChain } from '../helpers/otlp-receiver.js';
import { eventually, WAIT_MS } from '../helpers/wait.js';

/** A field of live TV and one of on demand, in one query. */
const QUERY = '{ channels { id } movies(limit: 1) { total } }';

/** Whether nothing listens on `url` any more (a killed process's port refuses at once). */
const refused = (url: string) => fetch(url).then(() => false, () => true);

const escaped = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

const json = (body: unknown) => ({ method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
/** An admin, as the gateway vouches for one to the services. */
const ADMIN = { 'x-user-id': '3', 'x-user-roles': 'user,admin' };

/** `npm run reset-data` on `dataDir`: its exit code and what it printed. */
function resetData(dataDir: string): { status: number | null; output: string } {
  const run = spawnSync(process.execPath, ['dist/scripts/reset-data.js'], { env: { ...process.env, DATA_DIR: dataDir }, encoding: 'utf8', timeout: WAIT_MS });
  return { status: run.status, output: run.stdout + run.stderr };
}

// Whole-stack process tests on a two-core machine shared with the other suites: nothing here waits for
// a fixed time, only for the stack to be ready, to answer, or to exit (the timeout only keeps a hung run
// bounded). A whole stack costs about 10 s of CPU to start: each launch here tells a user's whole story.
describe('npm start', { timeout: 240_000 }, () => {
  it('runs six services and the gateway, prints URLs and logins, traces a request across processes, restarts a service that dies (the gateway answering what it can meanwhile), and stops cleanly on Ctrl-C', async () => {
    const base = await freePortBlock(7);
    const port = base + 6;
    const gateway = `http://127.0.0.1:${port}`;
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


    // A service dies: it is started again as it was, the gateway answering what it can meanwhile.
    const launcherPid = launcherProcess(started);
    const token = await login(gateway, 'alice');
    const channels = () => fetch(`${gateway}/livetv/channels`, { headers: { authorization: `Bearer ${token}` } });
    const killed = serviceProcess(started, 'livetv');
    const startedAs = { command: commandOf(killed), environment: environmentOf(killed) };
    // The launcher is held still while live TV is down (it restarts it within a second or so), so that
    // the gateway is asked in between, however slow this machine.
    process.kill(launcherPid, 'SIGSTOP');
    try {
      process.kill(killed, 'SIGKILL');
      await eventually('live TV to stop listening', () => refused(`http://127.0.0.1:${servicePort('livetv', base)}/health`));
      const partial = await graphql(gateway, QUERY);
      expect(partial.data, partial.text).toEqual({ channels: null, movies: { total: expect.any(Number) } });
      expect(onlyError(partial)).toMatchObject({ code: 'UPSTREAM_UNAVAILABLE', path: ['channels'] });
      const unavailable = await channels();
      expect(unavailable.status).toBe(503);
      expect(await unavailable.json()).toMatchObject({ code: 'UPSTREAM_UNAVAILABLE' });
    } finally {
      process.kill(launcherPid, 'SIGCONT');
    }
    await eventually(() => `live TV to serve again; the launcher printed:\n${started.output()}`, () => /^livetv serving again in \d+\.\d s$/m.test(started.output()));
    expect(started.output()).toContain('livetv exited (signal SIGKILL); restarting in 0.25 s (restart 1)\n');
    // Another process, started as the first was: its command line and environment (so its port) the same.
    const restarted = serviceProcess(started, 'livetv');
    expect(restarted).not.toBe(killed);
    expect({ command: commandOf(restarted), environment: environmentOf(restarted) }).toEqual(startedAs);
    const full = await eventually('the gateway to answer every field again', async () => {
      const again = await graphql(gateway, QUERY);
      return again.errors === undefined && again;
    });
    expect((full.data?.channels as unknown[]).length).toBeGreaterThan(0);
    expect((await channels()).status).toBe(200);
    expect(started.child.exitCode, started.output()).toBeNull();

    const pids = descendants(started.child.pid as number);
    expect(pids.length, started.output()).toBeGreaterThanOrEqual(9);
    process.kill(-(started.child.pid as number), 'SIGINT');
    expect(await started.exited(), started.output()).toBe(0);
    await allGone(pids);
    // Ctrl-C reached every process: none was restarted as it stopped.
    expect(started.output().match(/restarting in/g)).toHaveLength(1);
  });

  it('start:services keeps an account and a movie across a restart in DATA_DIR; SIGTERM to npm alone stops every process; a service that keeps failing as it restarts stops everything, exit 1 with what it printed; reset-data empties DATA_DIR, never while it is in use', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'start-data-'));
    onTestFinished(() => rmSync(dataDir, { recursive: true, force: true }));
    const base = await freePortBlock(7);
    const url = (name: UpstreamName, path: string) => `http://127.0.0.1:${servicePort(name, base)}${path}`;
    const env = { SERVICES_BASE_PORT: String(base), PORT: String(base + 6), DATA_DIR: dataDir };

    const first = npmRun('start:services', env);
    await first.banner();
    expect(first.output()).not.toContain('Gateway');
    expect(first.output()).toMatch(/database ready in \d+\.\d s/);
    expect(first.output()).toContain(`embedded (PGlite), kept in ${dataDir}`);
    expect(await refused(`http://127.0.0.1:${base + 6}/health`)).toBe(true);
    const registered = await fetch(url('auth', '/auth/register'), json({ username: 'grace', password: 'grace-password', email: 'grace@example.com' }));
    expect(registered.status).toBe(201);
    const added = await fetch(url('ondemand', '/admin/ondemand/movies'), { ...json({ title: 'Still Here', genres: ['drama'], free: true }), headers: { 'content-type': 'application/json', ...ADMIN } });
    const { id } = (await added.json()) as { id: string };
    const firstPids = descendants(first.child.pid as number);
    expect(firstPids.length, first.output()).toBeGreaterThanOrEqual(8);
    // SIGTERM to npm alone (as a process manager sends it): every process stops, exit 0.
    first.child.kill('SIGTERM');
    expect(await first.exited(), first.output()).toBe(0);
    await allGone(firstPids);
    expect(await refused(url('auth', '/health'))).toBe(true);

    const secrets = mkdtempSync(join(tmpdir(), 'start-secrets-'));
    const keyFile = join(secrets, 'playback-signing-key');
    writeFileSync(keyFile, 'a-playback-signing-key\n');
    const second = launcher({ ...env, PLAYBACK_SIGNING_KEY_FILE: keyFile }, ['--services-only']);
    await second.banner();
    expect((await fetch(url('auth', '/auth/login'), json({ username: 'grace', password: 'grace-password' }))).status).toBe(200);
    expect(await (await fetch(url('ondemand', `/ondemand/movies/${id}`))).json()).toMatchObject({ id, title: 'Still Here' });
    // The demo data was written once.
    expect(await (await fetch(url('ondemand', '/ondemand/movies?limit=1'))).json()).toMatchObject({ total: 51 });
    const inUse = resetData(dataDir);
    expect(inUse.status).toBe(1);
    expect(inUse.output).toMatch(/in use by process \d+ \(one process at a time: stop it first\)/);

    // Its secret file is gone (a volume unmounted, say): live TV cannot start again.
    const pids = descendants(second.child.pid as number);
    rmSync(secrets, { recursive: true });
    process.kill(serviceProcess(second, 'livetv'), 'SIGKILL');
    expect(await second.exited(), second.output()).toBe(1);
    const output = second.output();
    expect(output).toContain('livetv exited (signal SIGKILL); restarting in 0.25 s (restart 1)\n');
    for (const nth of [2, 3, 4, 5]) expect(output).toContain(`livetv exited (code 1) before it was ready; restarting in ${restartDelay(nth) / 1000} s (restart ${nth})\n`);
    expect(output).toMatch(new RegExp(`^restart failed: livetv exited \\(code 1\\) before it was ready, 5 times in a row; it printed:\\n(.+\\n)*?${escaped(`PLAYBACK_SIGNING_KEY_FILE: cannot read ${keyFile} (ENOENT)`)}$`, 'm'));
    expect(output).not.toContain('restart 6');
    await allGone(pids);
    expect(await refused(url('auth', '/health'))).toBe(true);

    const reset = resetData(dataDir);
    expect(reset, reset.output).toMatchObject({ status: 0 });
    expect(existsSync(join(dataDir, 'pgdata'))).toBe(false);
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

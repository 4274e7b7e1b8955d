import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { createServer as createHttpServer } from 'node:http';
import { afterEach, describe, expect, it, onTestFinished } from 'vitest';
import { UPSTREAM_NAMES, servicePort } from '../../shared/upstreams.js';
import { freePortBlock } from '../helpers/ports.js';
import { eventually, within } from '../helpers/wait.js';
import { graphql } from '../helpers/graphql.js';
import { login } from '../helpers/login.js';
import { OtlpReceiver, traceChain } from '../helpers/otlp-receiver.js';

interface Started {
  readonly child: ChildProcess;
  readonly output: () => string;
  /** Resolves once it printed its banner; fails, with what it printed, if it exits first or takes longer than STACK_MS. */
  banner(): Promise<void>;
  /** Its exit code, once it exited; fails, with what it printed, after STACK_MS. */
  exited(): Promise<number | null>;
}

/** How long the whole stack may take to start, or to stop, on a busy two-core machine. */
const STACK_MS = 180_000;

let running: ChildProcess | undefined;

afterEach(() => {
  if (running?.exitCode === null && running.pid) process.kill(-running.pid, 'SIGKILL');
});

/** `npm run <script>`, or the launcher itself (`launcher`: what npm start runs once the build is current). */
function npmRun(script: string, env: NodeJS.ProcessEnv): Started {
  return run('npm', ['run', script], env);
}

const launcher = (env: NodeJS.ProcessEnv): Started => run(process.execPath, ['dist/scripts/start.js'], env);

function run(command: string, args: string[], env: NodeJS.ProcessEnv): Started {
  // Its own process group, so a signal to the group is what Ctrl-C in a terminal sends.
  // No load balancer to wait for: a stopped gateway closes at once (SHUTDOWN_DRAIN_MS=0) unless a test says otherwise.
  const child = spawn(command, args, { detached: true, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, SHUTDOWN_DRAIN_MS: '0', ...env } });
  running = child;
  let output = '';
  const banner = new Promise<void>((resolve, reject) => {
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      if (output.includes('Ctrl-C stops everything')) resolve();
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.once('exit', () => reject(new Error(`exited before it was ready:\n${output}`)));
  });
  // A launch that is meant to fail never shows the banner: that is not an error of its own.
  banner.catch(() => undefined);
  const exit = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const label = [command, ...args].join(' ');
  return {
    child,
    output: () => output,
    banner: () => within(() => `${label} to print its banner; it printed:\n${output}`, banner, STACK_MS),
    exited: () => within(() => `${label} to exit; it printed:\n${output}`, exit, STACK_MS),
  };
}

/** Resolves once none of `pids` is alive (each exits once its parent, which npm waited for, reaped it). */
async function allGone(pids: number[]): Promise<void> {
  await eventually(() => `every process of the stack to be gone; still alive: ${pidsAlive(pids).join(', ')}`, () => pidsAlive(pids).length === 0);
}

function pidsAlive(pids: number[]): number[] {
  return pids.filter((pid) => {
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  });
}

/** Every process below `pid` (npm, the launcher, the six services and the gateway), by the process tree. */
function descendants(pid: number): number[] {
  let children: number[];
  try {
    children = execFileSync('pgrep', ['-P', String(pid)], { encoding: 'utf8' }).trim().split('\n').map(Number);
  } catch {
    // pgrep exits 1 when there are none
    return [];
  }
  return children.flatMap((child) => [child, ...descendants(child)]);
}

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

  it('fails the launch at once, with what the failing process printed, when one exits while starting', async () => {
    const base = await freePortBlock(7);
    // A setting the processes refuse at their start (not the launcher): each exits at once.
    const started = launcher({ SERVICES_BASE_PORT: String(base), PORT: String(base + 6), OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:9', OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc' });
    expect(await started.exited(), started.output()).toBe(1);
    expect(started.output()).toMatch(/start failed: \w+ exited \(code 1\) before it was ready; it printed:\n.*OTEL_EXPORTER_OTLP_PROTOCOL=grpc is not supported/s);
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

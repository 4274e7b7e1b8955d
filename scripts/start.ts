/**
 * `npm start`: the six reference services and the gateway, each in its own process, on loopback.
 * `npm run start:services`: the services alone. Ctrl-C or SIGTERM stops every process, then exits 0.
 *
 * Each process is waited for until it serves or exits: a slow machine only makes the start slower. A
 * process that exits early fails the launch with what it printed; START_TIMEOUT_MS (default 120 s)
 * bounds the whole start and names whoever was still starting.
 */
import type { ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { createInterface } from 'node:readline';
import { CODE_EXTENSION, CODE_ROOT } from '../shared/paths.js';
import { UPSTREAM_NAMES, UPSTREAMS, servicePort } from '../shared/upstreams.js';
import { DEMO_USERS } from '../services/data/catalog.js';
import { serviceEnvironment } from '../services/lib/environment.js';
import { NotReadyError, spawnProcess, waitUntilReady } from './lib/processes.js';

const STOP_TIMEOUT_MS = 10_000;

function startTimeoutMs(raw: string | undefined): number {
  if (raw === undefined || raw === '') return 120_000;
  if (!/^\d+$/.test(raw) || Number(raw) < 1) {
    process.stderr.write(`START_TIMEOUT_MS must be a whole number of milliseconds (got ${JSON.stringify(raw.slice(0, 40))})\n`);
    process.exit(1);
  }
  return Number(raw);
}

const servicesOnly = process.argv.includes('--services-only');
// No load balancer watches a development stack: Ctrl-C stops the gateway without a drain window.
const env: NodeJS.ProcessEnv = {
  ...process.env,
  NODE_ENV: process.env.NODE_ENV ?? 'development',
  HOST: process.env.HOST ?? '127.0.0.1',
  SHUTDOWN_DRAIN_MS: process.env.SHUTDOWN_DRAIN_MS ?? '0',
};
const serviceEnv = (() => {
  try {
    return serviceEnvironment(env);
  } catch (error) {
    process.stderr.write(`start failed: ${error instanceof Error ? error.message : String(error)}\n`);
    return process.exit(1);
  }
})();
const gatewayUrl = `http://${env.HOST === '0.0.0.0' ? '127.0.0.1' : env.HOST}:${env.PORT ?? '4000'}`;
const timeoutMs = startTimeoutMs(env.START_TIMEOUT_MS);

interface Managed {
  readonly label: string;
  readonly url: string;
  readonly child: ChildProcess;
  readonly output: () => string;
  readonly exited: Promise<number | null>;
}

const managed: Managed[] = [];
const ready = new Set<string>();
let stopping = false;

function prefixLines(stream: NodeJS.ReadableStream | null, label: string, sink: NodeJS.WritableStream): void {
  if (!stream) return;
  createInterface({ input: stream }).on('line', (line) => sink.write(`${label.padEnd(9)}| ${line}\n`));
}

/** Runs a module of this code base in its own process, the way this launcher runs (the build, or tsx). */
function launch(label: string, module: string, url: string, args: string[] = []): Managed {
  const { child, output, exited } = spawnProcess({ label, args: [...process.execArgv, `${CODE_ROOT}${module}${CODE_EXTENSION}`, ...args], env, ipc: true });
  prefixLines(child.stdout, label, process.stdout);
  prefixLines(child.stderr, label, process.stderr);
  const process_ = { label, url, child, output, exited };
  managed.push(process_);
  return process_;
}

async function stopAll(exitCode: number): Promise<void> {
  if (stopping) return;
  stopping = true;
  for (const { child } of managed) if (child.exitCode === null) child.kill('SIGTERM');
  const killer = setTimeout(() => {
    for (const { child } of managed) if (child.exitCode === null) child.kill('SIGKILL');
  }, STOP_TIMEOUT_MS);
  await Promise.all(managed.map(({ exited }) => exited));
  clearTimeout(killer);
  process.exit(exitCode);
}

process.on('SIGINT', () => void stopAll(0));
process.on('SIGTERM', () => void stopAll(0));

/** Whether something already listens on a port this launch needs (its /health would pass for ours). */
function portInUse(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = createServer();
    probe.once('error', (error: NodeJS.ErrnoException) => resolve(error.code === 'EADDRINUSE'));
    probe.listen(port, host, () => probe.close(() => resolve(false)));
  });
}

/**
 * Refuses to start over a port that is taken: a process still running there (a gateway still draining,
 * say) would answer the readiness wait in place of the one started now.
 */
async function ensurePortsFree(): Promise<void> {
  const host = env.HOST ?? '127.0.0.1';
  const wanted = [
    ...UPSTREAM_NAMES.map((name) => ({ label: name, port: servicePort(name, serviceEnv.basePort) })),
    ...(servicesOnly ? [] : [{ label: 'gateway', port: Number(env.PORT ?? '4000') }]),
  ];
  const taken = (await Promise.all(wanted.map(async (entry) => ((await portInUse(host, entry.port)) ? entry : undefined)))).filter((entry) => entry !== undefined);
  if (taken.length > 0) {
    throw new Error(`${taken.map(({ label, port }) => `${host}:${port} (${label})`).join(', ')} already in use: stop what holds it, or set SERVICES_BASE_PORT / PORT`);
  }
}

async function main(): Promise<void> {
  await ensurePortsFree();
  const started = performance.now();
  for (const name of UPSTREAM_NAMES) launch(name, 'services/main', serviceEnv.urls[name], [name]);
  // The gateway needs no upstream to start (readiness tells when they answer), so all start at once.
  if (!servicesOnly) launch('gateway', 'gateway/src/main', gatewayUrl);
  const limit = AbortSignal.timeout(timeoutMs);
  const times = await Promise.all(
    managed.map(async (process_) => {
      const ms = await waitUntilReady({ label: process_.label, url: `${process_.url}/health`, child: process_.child, output: process_.output, signal: limit });
      ready.add(process_.label);
      return `${process_.label} ready in ${(ms / 1000).toFixed(1)} s`;
    }),
  );
  // A process that dies after it was ready stops the whole stack: nothing runs half started.
  for (const { label, exited } of managed) {
    void exited.then((code) => {
      if (stopping) return;
      process.stderr.write(`${label} exited unexpectedly (code ${code ?? 'signal'}); stopping everything\n`);
      void stopAll(1);
    });
  }

  const lines = ['', ...times.map((line) => `  ${line}`), `Ready in ${((performance.now() - started) / 1000).toFixed(1)} s.`];
  if (!servicesOnly) {
    lines.push(`  Gateway     ${gatewayUrl}   (REST routes, GET /health, GET /ready)`);
    lines.push(`  GraphQL     ${gatewayUrl}/graphql   (GraphiQL in a browser, offline; Apollo Sandbox at /graphql?sandbox)`);
    lines.push(`  REST docs   ${gatewayUrl}/docs   (OpenAPI at /openapi.json)`);
  }
  for (const name of UPSTREAM_NAMES) lines.push(`  ${UPSTREAMS[name].title.padEnd(18)} ${serviceEnv.urls[name]}`);
  lines.push('', '  Demo logins (POST /auth/login):');
  for (const user of DEMO_USERS) {
    lines.push(`    ${user.username.padEnd(6)} / ${user.password.padEnd(15)} roles: ${user.roles.join(', ').padEnd(12)} plan: ${user.planId ?? 'none (free content only)'}`);
  }
  lines.push('', 'Ctrl-C stops everything.', '');
  process.stdout.write(lines.join('\n'));
}

main().catch((error: unknown) => {
  if (stopping) return;
  if (error instanceof NotReadyError && error.exitCode === undefined) {
    const starting = managed.filter(({ label }) => !ready.has(label));
    process.stderr.write(`start failed: still starting after ${timeoutMs / 1000} s (START_TIMEOUT_MS): ${starting.map(({ label }) => label).join(', ')}\n`);
    for (const { label, output } of starting) process.stderr.write(`--- ${label} printed:\n${output() || '(nothing)'}\n`);
  } else {
    process.stderr.write(`start failed: ${error instanceof Error ? error.message : String(error)}\n`);
  }
  void stopAll(1);
});

/**
 * `npm start`: the six reference services and the gateway, each in its own process, on loopback.
 * `npm run start:services`: the services alone. Ctrl-C or SIGTERM stops every process, then exits 0.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { DEMO_USERS } from '../services/data/catalog.js';
import { serviceEnvironment } from '../services/lib/environment.js';
import { UPSTREAM_NAMES, UPSTREAMS } from '../gateway/src/upstreams.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const STARTUP_TIMEOUT_MS = 30_000;
const STOP_TIMEOUT_MS = 10_000;

const servicesOnly = process.argv.includes('--services-only');
const env: NodeJS.ProcessEnv = { ...process.env, NODE_ENV: process.env.NODE_ENV ?? 'development', HOST: process.env.HOST ?? '127.0.0.1' };
const serviceEnv = serviceEnvironment(env);
const gatewayUrl = `http://${env.HOST === '0.0.0.0' ? '127.0.0.1' : env.HOST}:${env.PORT ?? '4000'}`;

interface Managed {
  readonly label: string;
  readonly child: ChildProcess;
  readonly exited: Promise<number | null>;
}

const managed: Managed[] = [];
let stopping = false;

function prefixLines(stream: NodeJS.ReadableStream | null, label: string, sink: NodeJS.WritableStream): void {
  if (!stream) return;
  createInterface({ input: stream }).on('line', (line) => sink.write(`${label.padEnd(9)}| ${line}\n`));
}

function launch(label: string, entry: string, args: string[] = []): Managed {
  const child = spawn(process.execPath, ['--import', 'tsx', entry, ...args], {
    cwd: ROOT,
    env,
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
  });
  prefixLines(child.stdout, label, process.stdout);
  prefixLines(child.stderr, label, process.stderr);
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const process_ = { label, child, exited };
  void exited.then((code) => {
    if (!stopping) {
      process.stderr.write(`${label} exited unexpectedly (code ${code ?? 'signal'}); stopping everything\n`);
      void stopAll(1);
    }
  });
  managed.push(process_);
  return process_;
}

async function waitForHealth(label: string, url: string): Promise<void> {
  const deadline = Date.now() + STARTUP_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (stopping) return;
    try {
      const response = await fetch(`${url}/health`);
      if (response.ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`${label} did not answer ${url}/health within ${STARTUP_TIMEOUT_MS / 1000} s`);
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

async function main(): Promise<void> {
  const started = Date.now();
  for (const name of UPSTREAM_NAMES) launch(name, 'services/main.ts', [name]);
  // The gateway needs no upstream to start (readiness tells when they answer), so all start at once.
  if (!servicesOnly) launch('gateway', 'gateway/src/main.ts');
  await Promise.all([
    ...UPSTREAM_NAMES.map((name) => waitForHealth(name, serviceEnv.urls[name])),
    ...(servicesOnly ? [] : [waitForHealth('gateway', gatewayUrl)]),
  ]);
  if (stopping) return;

  const lines = ['', `Ready in ${((Date.now() - started) / 1000).toFixed(1)} s.`];
  if (!servicesOnly) {
    lines.push(`  Gateway     ${gatewayUrl}   (REST routes, GET /health, GET /ready)`);
    lines.push(`  GraphQL     ${gatewayUrl}/graphql   (Apollo Sandbox in a browser)`);
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
  process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
  void stopAll(1);
});

/**
 * `npm start`: the six reference services and the gateway, each in its own process, on loopback.
 * `npm run start:services`: the services alone.
 * `npm run start:cluster`: the scaled shape on one machine: the services, GATEWAY_REPLICAS gateways on
 * PORT+1, PORT+2… sharing a Redis (REDIS_URL's, else a redis-server started here), and a TCP balancer
 * on PORT spreading connections over them.
 * Ctrl-C or SIGTERM stops every process, then exits 0.
 *
 * Each process is waited for until it serves: a slow machine only makes the start slower.
 * START_TIMEOUT_MS (default 120 s) bounds the whole start and names whoever was still starting.
 * Every process is supervised (scripts/lib/supervisor.ts): one that exits is started again after a
 * delay, as Compose's `restart: unless-stopped` does, each restart told in one line; one that keeps
 * exiting before it serves (5 times in a row) stops the launch, or the running stack, with what it printed.
 */
import { randomBytes } from 'node:crypto';
import { accessSync, constants } from 'node:fs';
import { createConnection, createServer, type AddressInfo, type Server } from 'node:net';
import { delimiter, join } from 'node:path';
import { createInterface } from 'node:readline';
import { z } from 'zod';
import { CODE_EXTENSION, CODE_ROOT } from '../shared/paths.js';
import { ConfigError, integer, parsed } from '../shared/settings.js';
import { UPSTREAM_NAMES, UPSTREAMS, servicePort } from '../shared/upstreams.js';
import { DEMO_USERS } from '../services/data/catalog.js';
import { serviceEnvironment } from '../services/lib/environment.js';
import { CHANGE_EVENTS_PATH } from '../shared/change-events.js';
import { GATEWAY_NODE_FLAGS } from '../shared/node-flags.js';
import { listenBalancer } from './lib/balancer.js';
import { NotReadyError, spawnProcess, type Readiness, type SpawnedProcess } from './lib/processes.js';
import { Supervised } from './lib/supervisor.js';
import { answersPing } from './lib/redis.js';

const STOP_TIMEOUT_MS = 10_000;
/** The longest a timer can wait: past it, Node fires it at once (START_TIMEOUT_MS bounds a timer). */
const MAX_TIMER_MS = 2_147_483_647;

const mode = process.argv.includes('--services-only') ? 'services' : process.argv.includes('--cluster') ? 'cluster' : 'stack';
const host = process.env.HOST ?? '127.0.0.1';
/** Where this machine reaches what listens on HOST (on every interface: through loopback). */
const reachableHost = host === '0.0.0.0' ? '127.0.0.1' : host;
const urlOf = (port: number) => `http://${reachableHost}:${port}`;
// No load balancer watches a development stack: Ctrl-C stops the gateway without a drain window.
const env: NodeJS.ProcessEnv = {
  ...process.env,
  NODE_ENV: process.env.NODE_ENV ?? 'development',
  HOST: host,
  SHUTDOWN_DRAIN_MS: process.env.SHUTDOWN_DRAIN_MS ?? '0',
};

// The live TV service tells the gateway of its changes (shared/change-events.ts), signed with a secret of
// this launch unless one is given; through the balancer in a cluster, to the admin port when there is one.
if (mode !== 'services' && env.CHANGE_EVENTS_SECRET === undefined && env.CHANGE_EVENTS_SECRET_FILE === undefined) {
  env.CHANGE_EVENTS_SECRET = randomBytes(32).toString('base64url');
  env.CHANGE_EVENTS_URL ??= `${urlOf(Number(mode === 'stack' && env.ADMIN_PORT ? env.ADMIN_PORT : (env.PORT ?? 4000)))}${CHANGE_EVENTS_PATH}`;
}

/** What the launcher reads for itself, and the services' settings; a bad value is reported in one line. */
function readSettings() {
  const { START_TIMEOUT_MS, PORT } = parsed(z.object({ START_TIMEOUT_MS: integer('START_TIMEOUT_MS', 1, MAX_TIMER_MS, 120_000), PORT: integer('PORT', 1, 65_535, 4000) }), env);
  // Read only where it means something: a stray value does not stop `npm start`.
  const replicas = mode === 'cluster' ? parsed(z.object({ GATEWAY_REPLICAS: integer('GATEWAY_REPLICAS', 1, 16, 3) }), env).GATEWAY_REPLICAS : 0;
  if (PORT + replicas > 65_535) throw new ConfigError(`PORT + GATEWAY_REPLICAS must be at most 65535: replica i listens on PORT + i (got ${PORT} + ${replicas})`);
  return { timeoutMs: START_TIMEOUT_MS, port: PORT, replicas, serviceEnv: serviceEnvironment(env) };
}
const { timeoutMs, port, replicas, serviceEnv } = (() => {
  try {
    return readSettings();
  } catch (error) {
    process.stderr.write(`start failed: ${error instanceof Error ? error.message : String(error)}\n`);
    return process.exit(1);
  }
})();

/** The gateways: one on PORT, or the cluster's replicas on PORT+1… (the balancer holds PORT); none for the services alone. */
const gateways = mode === 'stack' ? [{ label: 'gateway', port }] : Array.from({ length: replicas }, (_, i) => ({ label: `gateway-${i + 1}`, port: port + i + 1 }));
/** Output lines are prefixed by their process's label, in a column one wider than the longest. */
const labelWidth = Math.max(...[...UPSTREAM_NAMES, ...gateways.map(({ label }) => label)].map((label) => label.length)) + 1;

const managed: Supervised[] = [];
/** How long each process took to serve, in ms, by label. */
const readyIn = new Map<string, number>();
let redisServer: Supervised | undefined;
let databaseServer: Supervised | undefined;
let balancer: Server | undefined;
/** Aborted by Ctrl-C, SIGTERM or a failure: every process is being stopped, none restarted. */
const stopping = new AbortController();

function prefixLines(stream: NodeJS.ReadableStream | null, label: string, sink: NodeJS.WritableStream): void {
  if (!stream) return;
  createInterface({ input: stream }).on('line', (line) => sink.write(`${label.padEnd(labelWidth)}| ${line}\n`));
}

/**
 * A process of this launch, spawned at once by `spawn` (and again at each restart): its output shown
 * under its label, waited for by `readiness`, restarted when it exits, stopped with the others.
 */
function supervise(label: string, spawn: () => SpawnedProcess, readiness: Readiness): Supervised {
  const supervised = new Supervised({
    label,
    spawn: () => {
      const spawned = spawn();
      prefixLines(spawned.child.stdout, label, process.stdout);
      prefixLines(spawned.child.stderr, label, process.stderr);
      return spawned;
    },
    readiness,
    startTimeoutMs: timeoutMs,
    announce: (line) => process.stderr.write(`${line}\n`),
    gaveUp: (reason) => {
      process.stderr.write(`restart failed: ${reason}\n`);
      void stopAll(1);
    },
    shutdown: stopping.signal,
  });
  managed.push(supervised);
  return supervised;
}

/** Runs a module of this code base in its own process, the way this launcher runs (the build, or tsx), with `nodeFlags` for Node. */
function launch(label: string, module: string, url: string, args: string[] = [], processEnv = env, nodeFlags: readonly string[] = []): Supervised {
  return supervise(label, () => spawnProcess({ label, args: [...process.execArgv, ...nodeFlags, `${CODE_ROOT}${module}${CODE_EXTENSION}`, ...args], env: processEnv, ipc: true }), { url: `${url}/health` });
}

async function waitReady(supervised: Supervised, limit: AbortSignal): Promise<void> {
  readyIn.set(supervised.label, await supervised.start(limit));
}

/** SIGTERM to each (that still runs), and their exits. */
const stopEach = (processes: readonly Supervised[]) => Promise.all(processes.map((supervised) => supervised.stop()));

async function stopAll(exitCode: number): Promise<void> {
  if (stopping.signal.aborted) return;
  // First, before any process goes: Ctrl-C in a terminal reaches each of them too, and none may be restarted.
  stopping.abort();
  balancer?.close();
  const killer = setTimeout(() => {
    for (const { process: { child } } of managed) if (child.exitCode === null) child.kill('SIGKILL');
  }, STOP_TIMEOUT_MS);
  // Redis and the database last: processes that saw them go while they closed would each report them unreachable.
  const last = [redisServer, databaseServer].filter((process_) => process_ !== undefined);
  await stopEach(managed.filter((process_) => !last.includes(process_)));
  await stopEach(last);
  clearTimeout(killer);
  process.exit(exitCode);
}

process.on('SIGINT', () => void stopAll(0));
process.on('SIGTERM', () => void stopAll(0));

/** Whether something already listens on a port this launch needs (its /health would pass for ours). */
function portInUse(port: number): Promise<boolean> {
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
  const wanted = [
    ...UPSTREAM_NAMES.map((name) => ({ label: name, port: servicePort(name, serviceEnv.basePort) })),
    ...(mode === 'cluster' ? [{ label: 'balancer', port }] : []),
    ...gateways,
  ];
  const taken = (await Promise.all(wanted.map(async (entry) => ((await portInUse(entry.port)) ? entry : undefined)))).filter((entry) => entry !== undefined);
  if (taken.length > 0) {
    throw new Error(`${taken.map(({ label, port: taken }) => `${host}:${taken} (${label})`).join(', ')} already in use: stop what holds it, or set SERVICES_BASE_PORT / PORT`);
  }
}

/** A loopback port nothing listens on, for the Redis started here. */
function freeLoopbackPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port: free } = probe.address() as AddressInfo;
      probe.close(() => resolve(free));
    });
  });
}

function onPath(command: string): boolean {
  return (process.env.PATH ?? '').split(delimiter).some((directory) => {
    try {
      accessSync(join(directory, command), constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

/** The Redis the replicas share: the environment's, one started here, or none. */
type SharedRedis = { readonly kind: 'external' | 'absent' } | { readonly kind: 'started'; readonly url: string; readonly password: string };

async function sharedRedis(signal: AbortSignal): Promise<SharedRedis> {
  // Its password, if any, reaches the replicas as given (REDIS_PASSWORD or REDIS_PASSWORD_FILE).
  if (env.REDIS_URL || env.REDIS_URL_FILE) return { kind: 'external' };
  if (!onPath('redis-server')) return { kind: 'absent' };
  const redisPort = await freeLoopbackPort();
  // Never printed. On the command line only until redis-server replaces its process title, as it starts.
  const password = randomBytes(32).toString('hex');
  const args = ['--port', String(redisPort), '--bind', '127.0.0.1', '--requirepass', password, '--save', '', '--appendonly', 'no', '--loglevel', 'warning'];
  // A restart binds the same port with the same password: the replicas reconnect to it.
  redisServer = supervise('redis', () => spawnProcess({ label: 'redis', command: 'redis-server', args, env }), { probe: () => answersPing(createConnection(redisPort, '127.0.0.1'), password) });
  await waitReady(redisServer, signal);
  return { kind: 'started', url: `redis://127.0.0.1:${redisPort}`, password };
}

/** The replicas' environment with the Redis they share. */
function withRedis(redis: SharedRedis): NodeJS.ProcessEnv {
  if (redis.kind !== 'started') return env;
  // The password given here replaces a REDIS_PASSWORD_FILE meant for another Redis (the gateway refuses both together).
  const { REDIS_PASSWORD_FILE: _otherRedisPassword, ...rest } = env;
  return { ...rest, REDIS_URL: redis.url, REDIS_PASSWORD: redis.password };
}

function describeRedis(redis: SharedRedis): string {
  switch (redis.kind) {
    case 'started':
      return `${redis.url}   (started for the replicas, a password is set)`;
    case 'external':
      return 'REDIS_URL of the environment, shared by the replicas';
    case 'absent':
      return 'none: each replica keeps its own caches and limits';
  }
}

/** Whether something accepts connections on a loopback port. */
function acceptsConnections(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/**
 * With no DATABASE_URL, the embedded database: its directory is one process's, so a process of its own
 * holds it and serves it to the services' processes over the Postgres protocol (services/database.ts).
 * The services wait for it as they would for a real server.
 */
async function launchDatabase(): Promise<void> {
  const databasePort = await freeLoopbackPort();
  const args = [...process.execArgv, `${CODE_ROOT}services/database${CODE_EXTENSION}`, String(databasePort)];
  databaseServer = supervise('database', () => spawnProcess({ label: 'database', args, env, ipc: true }), { probe: () => acceptsConnections(databasePort) });
  env.DATABASE_URL = `postgres://postgres@127.0.0.1:${databasePort}/postgres`;
}

function describeDatabase(): string {
  const { database } = serviceEnv;
  switch (database.kind) {
    case 'postgres':
      return 'DATABASE_URL of the environment';
    case 'memory':
      return 'embedded (PGlite), in memory: nothing is kept';
    case 'embedded':
      return `embedded (PGlite), kept in ${database.dataDir}   (npm run reset-data empties it)`;
  }
}

async function main(): Promise<void> {
  await ensurePortsFree();
  const started = performance.now();
  const limit = AbortSignal.timeout(timeoutMs);
  if (serviceEnv.database.kind !== 'postgres') await launchDatabase();
  for (const name of UPSTREAM_NAMES) launch(name, 'services/main', serviceEnv.urls[name], [name]);
  // The replicas start once their Redis answers: they would otherwise each report it down, then up again.
  const redis = mode === 'cluster' ? await sharedRedis(limit) : undefined;
  if (redis?.kind === 'absent') {
    process.stderr.write('warning: no REDIS_URL and no redis-server on the PATH: the replicas share nothing, each keeps its own caches and limits in its process\n');
  }
  // A gateway needs no upstream to start (readiness tells when they answer), so all start at once.
  const gatewayEnv = redis ? withRedis(redis) : env;
  for (const gateway of gateways) launch(gateway.label, 'gateway/src/main', urlOf(gateway.port), [], { ...gatewayEnv, PORT: String(gateway.port) }, GATEWAY_NODE_FLAGS);
  if (mode === 'cluster') balancer = await listenBalancer(host, port, gateways.map((gateway) => ({ host: reachableHost, port: gateway.port })));
  await Promise.all(managed.filter(({ label }) => !readyIn.has(label)).map((supervised) => waitReady(supervised, limit)));

  const lines = ['', ...managed.map(({ label }) => `  ${label} ready in ${((readyIn.get(label) ?? 0) / 1000).toFixed(1)} s`), `Ready in ${((performance.now() - started) / 1000).toFixed(1)} s.`];
  if (gateways.length > 0) {
    const entry = urlOf(port);
    const balanced = mode === 'cluster' ? `a TCP balancer, round-robin over ${replicas} replicas; ` : '';
    lines.push(`  Gateway     ${entry}   (${balanced}REST routes, GET /health, GET /ready)`);
    lines.push(`  GraphQL     ${entry}/graphql   (GraphiQL in a browser, offline; Apollo Sandbox at /graphql?sandbox)`);
    lines.push(`  REST docs   ${entry}/docs   (OpenAPI at /openapi.json)`);
  }
  if (redis) {
    for (const gateway of gateways) lines.push(`  ${gateway.label.padEnd(11)} ${urlOf(gateway.port)}`);
    lines.push(`  Redis       ${describeRedis(redis)}`);
  }
  for (const name of UPSTREAM_NAMES) lines.push(`  ${UPSTREAMS[name].title.padEnd(18)} ${serviceEnv.urls[name]}`);
  lines.push(`  ${'Database'.padEnd(18)} ${describeDatabase()}`);
  lines.push('', '  Demo logins (POST /auth/login):');
  for (const user of DEMO_USERS) {
    lines.push(`    ${user.username.padEnd(6)} / ${user.password.padEnd(15)} roles: ${user.roles.join(', ').padEnd(12)} plan: ${user.planId ?? 'none (free content only)'}`);
  }
  lines.push('', 'A process that exits is restarted. Ctrl-C stops everything.', '');
  process.stdout.write(lines.join('\n'));
}

main().catch((error: unknown) => {
  if (stopping.signal.aborted) return;
  if (error instanceof NotReadyError && error.exitCode === undefined) {
    const starting = managed.filter(({ label }) => !readyIn.has(label));
    process.stderr.write(`start failed: still starting after ${timeoutMs / 1000} s (START_TIMEOUT_MS): ${starting.map(({ label }) => label).join(', ')}\n`);
    for (const { label, process: { output } } of starting) process.stderr.write(`--- ${label} printed:\n${output() || '(nothing)'}\n`);
  } else {
    process.stderr.write(`start failed: ${error instanceof Error ? error.message : String(error)}\n`);
  }
  void stopAll(1);
});

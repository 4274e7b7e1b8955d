import { execFileSync, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';
import { SignJWT } from 'jose';
import { Pool } from 'undici';
import { createConnection } from 'node:net';
import { spawnProcess, waitUntilReady, type Readiness, type SpawnOptions } from '../scripts/lib/processes.js';
import { answersPing } from '../scripts/lib/redis.js';
import { GATEWAY_NODE_FLAGS } from '../shared/node-flags.js';
import { UPSTREAM_NAMES, servicePort, type UpstreamName } from '../shared/upstreams.js';

/** The peers' own package: installed here on first use, never by the project's `npm ci` (~540 MB). */
export const PEERS_DIR = fileURLToPath(new URL('./peers/', import.meta.url));

/** Installs the peers from their lock file when they are not there yet. */
export function ensurePeers(): void {
  if (existsSync(`${PEERS_DIR}node_modules/.package-lock.json`)) return;
  console.log('installing the benchmark peers (bench/peers, once) …');
  execFileSync('npm', ['ci', '--no-audit', '--no-fund'], { cwd: PEERS_DIR, stdio: 'inherit' });
}

/** Starts a process, stopped with the benchmark, once `ready` says it serves (a URL answering 200, or a probe). */
async function startTracked(options: SpawnOptions, ready: string | Readiness, attach?: (child: ChildProcess) => void): Promise<ChildProcess> {
  const spawned = spawnProcess(options);
  started.push(spawned.child);
  attach?.(spawned.child);
  await waitUntilReady({ label: options.label, ...(typeof ready === 'string' ? { url: ready } : ready), child: spawned.child, output: spawned.output });
  return spawned.child;
}

/** A redis-server of the benchmark's own on `port` (loopback, nothing persisted, `password` when given), stopped with it. */
export async function startRedisServer(port: number, password?: string): Promise<{ readonly url: string; readonly pid: number | undefined }> {
  const args = ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', ...(password === undefined ? [] : ['--requirepass', password])];
  const child = await startTracked({ label: 'redis-server', command: 'redis-server', args, env: process.env }, { probe: () => answersPing(createConnection(port, '127.0.0.1'), password) });
  return { url: `redis://127.0.0.1:${port}`, pid: child.pid };
}

/** A peer's script (bench/peers/*.mjs) in its own process, resolving its packages in bench/peers. */
export async function startPeer(script: string, args: string[], readyUrl: string, env: NodeJS.ProcessEnv = {}): Promise<ChildProcess> {
  return startTracked({ label: script, args: [`${PEERS_DIR}${script}`, ...args], cwd: PEERS_DIR, env: { ...process.env, ...env }, ipc: true }, readyUrl);
}

/**
 * nginx as a plain reverse proxy with upstream keep-alive, one worker (the gateways are one process
 * each) and a buffered access log, when nginx is installed; undefined otherwise.
 */
export async function startNginx(port: number, upstream: string): Promise<ChildProcess | undefined> {
  if (spawnSync('nginx', ['-v']).error) return undefined;
  const prefix = mkdtempSync(`${tmpdir()}/bench-nginx-`);
  writeFileSync(
    `${prefix}/nginx.conf`,
    `worker_processes 1;
pid ${prefix}/nginx.pid;
error_log ${prefix}/error.log warn;
events { worker_connections 1024; }
http {
  access_log ${prefix}/access.log combined buffer=64k flush=1s;
  upstream service { server ${new URL(upstream).host}; keepalive 64; }
  server {
    listen 127.0.0.1:${port};
    location = /health { return 200 '{"status":"ok"}'; }
    location / { proxy_pass http://service; proxy_http_version 1.1; proxy_set_header Connection ""; }
  }
}
`,
  );
  return startTracked({ label: 'nginx', command: 'nginx', args: ['-p', prefix, '-c', `${prefix}/nginx.conf`, '-g', 'daemon off;'] }, `http://127.0.0.1:${port}/health`);
}

/** A process and its children (nginx's worker), from /proc. */
function processTree(pid: number): number[] {
  try {
    const children = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim();
    return [pid, ...(children === '' ? [] : children.split(' ').flatMap((child) => processTree(Number(child))))];
  } catch {
    return [pid];
  }
}

/** CPU time (ms, user + system) and resident memory (MB) of a process with its children, from /proc. */
export function processStats(pid: number | undefined): { cpuMs: number; rssMb: number } | undefined {
  if (pid === undefined) return undefined;
  try {
    let cpuMs = 0;
    let rssKb = 0;
    for (const member of processTree(pid)) {
      const fields = (readFileSync(`/proc/${member}/stat`, 'utf8').split(') ')[1] ?? '').split(' ');
      // utime and stime, in clock ticks of 10 ms.
      cpuMs += (Number(fields[11]) + Number(fields[12])) * 10;
      rssKb += Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${member}/status`, 'utf8'))?.[1] ?? 0);
    }
    return { cpuMs, rssMb: Math.round(rssKb / 1024) };
  } catch {
    return undefined;
  }
}

/**
 * Resident memory once a process has rested after load: V8 keeps garbage promoted under load until its
 * memory reducer runs on an idle process (here 20–25 s later). The least seen in `idleMs`, polled each second.
 */
export async function restedRssMb(pid: number | undefined, idleMs = 60_000): Promise<number | undefined> {
  let lowest = processStats(pid)?.rssMb;
  for (const started = Date.now(); lowest !== undefined && Date.now() - started < idleMs; ) {
    await new Promise((resolve) => setTimeout(resolve, 1000));
    lowest = Math.min(lowest, processStats(pid)?.rssMb ?? lowest);
  }
  return lowest;
}

/** What the machine is, for the results: cores, CPU model, Node version, load average now. */
export function machine(): string {
  return `${cpus().length} × ${cpus()[0]?.model ?? 'unknown CPU'}, Node ${process.version}, load average ${loadavg().map((value) => value.toFixed(2)).join(' ')}`;
}

const started: ChildProcess[] = [];

/**
 * Every benchmark stops by itself: after `limitMs` it kills what it started and exits 1, whatever
 * state it is in. Processes it started are also killed when it exits normally.
 */
export function stopAfter(limitMs: number): void {
  setTimeout(() => {
    console.error(`benchmark still running after ${limitMs / 1000} s: stopping`);
    process.exit(1);
  }, limitMs).unref();
  process.once('exit', () => {
    for (const child of started) if (child.exitCode === null) child.kill('SIGKILL');
  });
}

/** Ends the benchmark: what it started is stopped (they also exit when their IPC channel closes). */
export function finish(): never {
  for (const child of started) if (child.exitCode === null) child.kill('SIGTERM');
  process.exit(process.exitCode ?? 0);
}

export interface Measurement {
  readonly label: string;
  /** Requests answered per second: the most the case serves, or what it kept up with at a fixed rate. */
  readonly requestsPerSecond: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly non2xx: number;
  /** CPU time of the measured process per request, when its pid was given. */
  readonly cpuUsPerRequest?: number;
  /** This process's own CPU per request: the load generator shares the two cores with what it measures. */
  readonly clientCpuUsPerRequest: number;
}

/**
 * Runs a module in its own process and waits until `readyUrl` answers (or the process exits). A module
 * of the product runs from the build, as in production (`gateway/src/main` is dist/gateway/src/main.js),
 * its log (stdout) going to /dev/null: reading it here would take CPU from what is measured. A
 * benchmark's own helper (`bench/….ts`) runs through tsx. `nodeArgs` go to Node itself (`--inspect`),
 * after the gateway's own flags when it is the gateway (shared/node-flags.ts).
 */
export async function startProcess(entry: string, args: string[], env: NodeJS.ProcessEnv, readyUrl: string, nodeArgs: readonly string[] = []): Promise<ChildProcess> {
  const fromSource = entry.endsWith('.ts');
  const flags = entry === 'gateway/src/main' ? [...GATEWAY_NODE_FLAGS, ...nodeArgs] : nodeArgs;
  return startTracked({ label: entry, args: [...flags, ...(fromSource ? ['--import', 'tsx', entry] : [`dist/${entry}.js`]), ...args], env: { ...process.env, ...env }, ipc: true, stdout: fromSource ? 'pipe' : 'ignore' }, readyUrl, (child) =>
    child.stderr?.on('data', (chunk: Buffer) => process.stderr.write(chunk)),
  );
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
 * The six reference services, each in its own process, on the block from `base`, keeping their data as
 * `npm start` has them keep it: in the embedded database's own process (on `databasePort`, in memory:
 * a benchmark keeps nothing), unless `env` gives a DATABASE_URL. A build from before the services kept
 * data has no such process: its services start alone. Answers each process's pid.
 */
export async function startServices(base: number, databasePort: number, env: NodeJS.ProcessEnv): Promise<Partial<Record<UpstreamName | 'database', number>>> {
  const pids: Partial<Record<UpstreamName | 'database', number>> = {};
  let servicesEnv: NodeJS.ProcessEnv = { ...env, SERVICES_BASE_PORT: String(base) };
  if (!env.DATABASE_URL && existsSync('dist/services/database.js')) {
    const database = await startTracked({ label: 'database', args: ['dist/services/database.js', String(databasePort)], env: { ...process.env, ...env, DATA_DIR: 'memory://' }, ipc: true, stdout: 'ignore' }, { probe: () => acceptsConnections(databasePort) });
    pids.database = database.pid;
    servicesEnv = { ...servicesEnv, DATABASE_URL: `postgres://postgres@127.0.0.1:${databasePort}/postgres` };
  }
  await Promise.all(
    UPSTREAM_NAMES.map(async (name) => {
      pids[name] = (await startProcess('services/main', [name], servicesEnv, `http://127.0.0.1:${servicePort(name, base)}/health`)).pid;
    }),
  );
  return pids;
}

/** The HS256 secret every benchmark's gateways and peers verify tokens with. */
export const BENCH_SECRET = 'bench-secret-that-is-long-enough-for-hs256-keys';

/** A token for user `sub`, signed with the benchmarks' secret, valid for two hours (longer than any run). */
export function signToken(sub: string, roles: readonly string[] = ['user']): Promise<string> {
  return new SignJWT({ roles: [...roles] }).setProtectedHeader({ alg: 'HS256' }).setSubject(sub).setExpirationTime('2h').sign(new TextEncoder().encode(BENCH_SECRET));
}

/** Who sends a case's requests: one token for all, or each request's drawn from a pool of users. */
export interface Users {
  readonly label: string;
  readonly tokens: readonly string[];
}

/** How many distinct users the many-users cases draw from, as many apps' clients do. */
const POOL_SIZE = 1000;

/** The `sub` of the pool's user `index`. */
export const userSub = (index: number) => `bench-user-${index + 1}`;

/** The two kinds of callers every workload is measured with: one user, and POOL_SIZE users (distinct `sub`). */
export async function userPools(): Promise<{ readonly one: Users; readonly many: Users }> {
  const tokens = await Promise.all(Array.from({ length: POOL_SIZE }, (_, index) => signToken(userSub(index))));
  return { one: { label: '1 user', tokens: tokens.slice(0, 1) }, many: { label: `${POOL_SIZE.toLocaleString('en')} users`, tokens } };
}

export interface RequestShape {
  readonly method: 'GET' | 'POST';
  readonly body?: string;
}

export interface Load {
  readonly url: string;
  readonly headers?: Record<string, string>;
  /** Each request carries `authorization: Bearer <token>` drawn at random from these (none: no token). */
  readonly tokens?: readonly string[];
  readonly seconds?: number;
  readonly shape?: RequestShape;
  /** The measured process, for its CPU per request. */
  readonly pid?: number | undefined;
  /** Requests per second, sent at an even pace whatever the answers take; absent: as many as 32 connections get answered. */
  readonly rate?: number;
}

const CONNECTIONS = 32;

/** One of `tokens` at random, as the header a request carries. */
export const bearerFrom = (tokens: readonly string[]) => ({ authorization: `Bearer ${tokens[Math.floor(Math.random() * tokens.length)] ?? ''}` });

interface Run {
  readonly requests: number;
  readonly seconds: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly failed: number;
}

/**
 * As many requests as CONNECTIONS keep-alive connections get answered (autocannon). A single token is part
 * of the request autocannon builds once; a pool's token is drawn per request in `setupRequest`, which
 * makes autocannon build each request again (~5 µs of this process's CPU, shown beside the cases').
 */
async function saturate(load: Load, seconds: number): Promise<Run> {
  const { url, headers = {}, tokens = [], shape = { method: 'GET' } } = load;
  const single = tokens.length === 1 ? bearerFrom(tokens) : {};
  const result = await autocannon({
    url,
    headers: { ...headers, ...single },
    connections: CONNECTIONS,
    duration: seconds,
    pipelining: 1,
    method: shape.method,
    ...(shape.body ? { body: shape.body } : {}),
    ...(tokens.length > 1 ? { requests: [{ setupRequest: (request) => ({ ...request, headers: { ...request.headers, ...bearerFrom(tokens) } }) }] } : {}),
  });
  return { requests: result.requests.total, seconds, p50Ms: result.latency.p50, p99Ms: result.latency.p99, failed: result.non2xx + result.errors + result.timeouts };
}

/**
 * `rate` requests a second, each sent at its time whatever the earlier ones take (an open loop: users do
 * not wait for each other), over at most CONNECTIONS keep-alive connections; a request's latency counts
 * from when it was due, so a server that falls behind shows it in full. autocannon's own rate options
 * send each connection's quota back to back at the start of every second and then pause: that measures
 * bursts at full load, not a steady rate.
 */
async function pace(load: Load, seconds: number, rate: number): Promise<Run> {
  const { url, headers = {}, tokens = [], shape = { method: 'GET' } } = load;
  const target = new URL(url);
  const pool = new Pool(target.origin, { connections: CONNECTIONS, pipelining: 1 });
  const total = Math.round(rate * seconds);
  const latencies: number[] = [];
  let failed = 0;
  const started = performance.now();
  const send = async (dueMs: number) => {
    try {
      const answer = await pool.request({ path: `${target.pathname}${target.search}`, method: shape.method, headers: { ...headers, ...(tokens.length > 0 ? bearerFrom(tokens) : {}) }, body: shape.body ?? null });
      await answer.body.dump();
      if (answer.statusCode >= 300) failed += 1;
    } catch {
      failed += 1;
    }
    latencies.push(performance.now() - dueMs);
  };
  const inFlight: Promise<void>[] = [];
  const dueAt = (index: number) => started + (index * 1000) / rate;
  await new Promise<void>((resolve) => {
    // A timer for the next request's time (timers fire a millisecond late at best: each sends all that has fallen due).
    const tick = () => {
      const now = performance.now();
      while (inFlight.length < total && dueAt(inFlight.length) <= now) inFlight.push(send(dueAt(inFlight.length)));
      if (inFlight.length === total) resolve();
      else setTimeout(tick, dueAt(inFlight.length) - now);
    };
    tick();
  });
  await Promise.all(inFlight);
  await pool.close();
  latencies.sort((a, b) => a - b);
  const at = (fraction: number) => Math.round((latencies[Math.min(latencies.length - 1, Math.floor(latencies.length * fraction))] ?? 0) * 10) / 10;
  return { requests: total, seconds: (performance.now() - started) / 1000, p50Ms: at(0.5), p99Ms: at(0.99), failed };
}

/** A case measured once: at full load, or at `load.rate` requests a second. */
export async function measure(label: string, load: Load): Promise<Measurement> {
  const seconds = load.seconds ?? 5;
  const before = processStats(load.pid);
  const clientBefore = process.cpuUsage();
  const run = load.rate === undefined ? await saturate(load, seconds) : await pace(load, seconds, load.rate);
  const client = process.cpuUsage(clientBefore);
  const after = processStats(load.pid);
  const perRequest = (us: number) => Math.round(us / Math.max(1, run.requests));
  return {
    label,
    requestsPerSecond: Math.round(run.requests / run.seconds),
    p50Ms: run.p50Ms,
    p99Ms: run.p99Ms,
    non2xx: run.failed,
    clientCpuUsPerRequest: perRequest(client.user + client.system),
    ...(before && after && run.requests > 0 ? { cpuUsPerRequest: perRequest((after.cpuMs - before.cpuMs) * 1000) } : {}),
  };
}

export function table(rows: readonly Measurement[]): string {
  const lines = ['| case | req/s | p50 ms | p99 ms | CPU µs/request | load generator CPU µs/request | non-2xx/errors |', '| --- | ---: | ---: | ---: | ---: | ---: | ---: |'];
  for (const row of rows) lines.push(`| ${row.label} | ${row.requestsPerSecond} | ${row.p50Ms} | ${row.p99Ms} | ${row.cpuUsPerRequest ?? ''} | ${row.clientCpuUsPerRequest} | ${row.non2xx} |`);
  return lines.join('\n');
}

/**
 * A figure against its target, in words: met, or missed and by how much. A ratio (×) must reach its
 * target unless `atMost`; a cost (ms, MB, KB) must not exceed it.
 */
export function verdict(value: number, target: number, { unit = '×', atMost = false, digits = 2 }: { unit?: string; atMost?: boolean; digits?: number } = {}): string {
  const text = `target ${atMost ? '≤' : '≥'} ${unit === '×' ? target.toFixed(1) : target}${unit}`;
  if (atMost ? value <= target : value >= target) return `${text} met`;
  return `${text} missed by ${Math.abs(value - target).toFixed(digits)}${unit} (${Math.abs((value / target - 1) * 100).toFixed(0)}% ${atMost ? 'over' : 'short'})`;
}

/** The median of the rounds of a case. */
export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? (sorted[middle] ?? 0) : ((sorted[middle - 1] ?? 0) + (sorted[middle] ?? 0)) / 2;
}

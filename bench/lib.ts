import { execFileSync, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';
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
  readonly requestsPerSecond: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly non2xx: number;
  /** CPU time of the measured process per request, when its pid was given. */
  readonly cpuUsPerRequest?: number;
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

export interface RequestShape {
  readonly method: 'GET' | 'POST';
  readonly body?: string;
}

export async function measure(label: string, url: string, headers: Record<string, string> = {}, seconds = 5, connections = 32, shape: RequestShape = { method: 'GET' }, pid?: number): Promise<Measurement> {
  const before = processStats(pid);
  const result = await autocannon({ url, headers, connections, duration: seconds, pipelining: 1, method: shape.method, ...(shape.body ? { body: shape.body } : {}) });
  const after = processStats(pid);
  const requests = result.requests.total;
  return {
    label,
    requestsPerSecond: Math.round(result.requests.average),
    p50Ms: result.latency.p50,
    p99Ms: result.latency.p99,
    non2xx: result.non2xx + result.errors + result.timeouts,
    ...(before && after && requests > 0 ? { cpuUsPerRequest: Math.round(((after.cpuMs - before.cpuMs) * 1000) / requests) } : {}),
  };
}

export function table(rows: readonly Measurement[]): string {
  const lines = ['| case | req/s | p50 ms | p99 ms | CPU µs/request | non-2xx/errors |', '| --- | ---: | ---: | ---: | ---: | ---: |'];
  for (const row of rows) lines.push(`| ${row.label} | ${row.requestsPerSecond} | ${row.p50Ms} | ${row.p99Ms} | ${row.cpuUsPerRequest ?? ''} | ${row.non2xx} |`);
  return lines.join('\n');
}

/** The median of the rounds of a case. */
export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? (sorted[middle] ?? 0) : ((sorted[middle - 1] ?? 0) + (sorted[middle] ?? 0)) / 2;
}

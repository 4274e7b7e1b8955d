import { fork, type ChildProcess } from 'node:child_process';
import autocannon from 'autocannon';
import { recentOutput, waitUntilReady } from '../scripts/lib/readiness.js';

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
}

/**
 * Runs a module in its own process and waits until `readyUrl` answers (or the process exits). A module
 * of the product runs from the build, as in production (`gateway/src/main` is dist/gateway/src/main.js),
 * its log (stdout) going to /dev/null: reading it here would take CPU from what is measured. A
 * benchmark's own helper (`bench/….ts`) runs through tsx.
 */
export async function startProcess(entry: string, args: string[], env: NodeJS.ProcessEnv, readyUrl: string): Promise<ChildProcess> {
  const fromSource = entry.endsWith('.ts');
  const child = fork(fromSource ? entry : `dist/${entry}.js`, args, { execArgv: fromSource ? ['--import', 'tsx'] : [], env: { ...process.env, ...env }, stdio: ['ignore', fromSource ? 'pipe' : 'ignore', 'pipe', 'ipc'] });
  started.push(child);
  child.stderr?.pipe(process.stderr);
  await waitUntilReady({ label: entry, url: readyUrl, child, output: recentOutput(child) });
  return child;
}

export interface RequestShape {
  readonly method: 'GET' | 'POST';
  readonly body?: string;
}

export async function measure(label: string, url: string, headers: Record<string, string> = {}, seconds = 5, connections = 32, shape: RequestShape = { method: 'GET' }): Promise<Measurement> {
  const result = await autocannon({ url, headers, connections, duration: seconds, pipelining: 1, method: shape.method, ...(shape.body ? { body: shape.body } : {}) });
  return {
    label,
    requestsPerSecond: Math.round(result.requests.average),
    p50Ms: result.latency.p50,
    p99Ms: result.latency.p99,
    non2xx: result.non2xx + result.errors + result.timeouts,
  };
}

export function table(rows: readonly Measurement[]): string {
  const lines = ['| case | req/s | p50 ms | p99 ms | non-2xx/errors |', '| --- | ---: | ---: | ---: | ---: |'];
  for (const row of rows) lines.push(`| ${row.label} | ${row.requestsPerSecond} | ${row.p50Ms} | ${row.p99Ms} | ${row.non2xx} |`);
  return lines.join('\n');
}

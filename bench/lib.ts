import { fork, type ChildProcess } from 'node:child_process';
import autocannon from 'autocannon';

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

/** Runs a module in its own process (as it runs in production) and waits for it to say it is ready. */
export function startProcess(entry: string, args: string[], env: NodeJS.ProcessEnv, readyUrl?: string): Promise<ChildProcess> {
  const child = fork(entry, args, { execArgv: ['--import', 'tsx'], env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
  started.push(child);
  return new Promise((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`${entry} exited with ${code}`)));
    if (!readyUrl) {
      child.once('message', () => resolve(child));
      return;
    }
    const poll = async () => {
      try {
        if ((await fetch(readyUrl)).ok) return resolve(child);
      } catch {
        // not yet listening
      }
      setTimeout(() => void poll(), 100);
    };
    void poll();
  });
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

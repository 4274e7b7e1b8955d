import { execFileSync, type ExecFileSyncOptions } from 'node:child_process';
import { spawnProcess, waitUntilReady, type SpawnedProcess } from '../../scripts/lib/processes.js';
import { GATEWAY_NODE_FLAGS } from '../../shared/node-flags.js';
import { freePortBlock } from './ports.js';
import { WAIT_MS, waitingFor, within } from './wait.js';

export interface GatewayProcess extends SpawnedProcess {
  readonly url: string;
  /** Every line the process wrote to stdout so far. */
  stdout(): string[];
  /** The stdout lines that are JSON log lines, parsed. */
  logLines(): Record<string, unknown>[];
}

/**
 * The built gateway (dist/) as its own process, with its Node flags as production runs it, on a free port, with exactly `env` (plus PATH, PORT, and
 * SHUTDOWN_DRAIN_MS=0 unless `env` sets it: a test's stop does not wait out a load balancer): for what
 * only a process shows — its log on stdout, its exit, its process-wide tracer. Resolves once /health
 * answers; fails with its output if it exits first, or saying so after WAIT_MS (and kills it). Its
 * `stop` waits at most WAIT_MS too.
 */
export async function spawnGateway(env: NodeJS.ProcessEnv, script = 'dist/gateway/src/main.js', args: readonly string[] = []): Promise<GatewayProcess> {
  const port = env.PORT ?? String(await freePortBlock(1));
  const url = `http://127.0.0.1:${port}`;
  const spawned = spawnProcess({ label: script, args: [...GATEWAY_NODE_FLAGS, script, ...args], env: { PATH: process.env.PATH, SHUTDOWN_DRAIN_MS: '0', ...env, PORT: port } });
  const lines: string[] = [];
  let partial = '';
  spawned.child.stdout?.on('data', (chunk: Buffer) => {
    const text = partial + chunk.toString();
    const complete = text.split('\n');
    partial = complete.pop() ?? '';
    lines.push(...complete.filter((line) => line !== ''));
  });
  try {
    await waitUntilReady({ label: script, url: `${url}/health`, child: spawned.child, output: spawned.output, signal: waitingFor(`${url}/health to answer 200`) });
  } catch (error) {
    spawned.child.kill('SIGKILL');
    throw error;
  }
  return {
    ...spawned,
    url,
    stop: () => within(() => `${script} to exit after SIGTERM; it printed:\n${spawned.output()}`, spawned.stop()),
    stdout: () => [...lines],
    logLines: () =>
      lines.flatMap((line) => {
        try {
          return [JSON.parse(line) as Record<string, unknown>];
        } catch {
          return [];
        }
      }),
  };
}

/**
 * A command run to its end (execFileSync), answering what it printed; after `timeoutMs` it is killed and
 * the run fails saying what it waited for. Any other failure (an exit code) is thrown as execFileSync's.
 */
export function runToEnd(what: string, file: string, args: readonly string[], options: ExecFileSyncOptions = {}, timeoutMs = WAIT_MS): string {
  try {
    return execFileSync(file, args, { ...options, encoding: 'utf8', timeout: timeoutMs });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ETIMEDOUT') throw new Error(`waited ${timeoutMs} ms for ${what}`, { cause: error });
    throw error;
  }
}

import { spawnProcess, waitUntilReady, type SpawnedProcess } from '../../scripts/lib/processes.js';
import { freePortBlock } from './ports.js';

export interface GatewayProcess extends SpawnedProcess {
  readonly url: string;
  /** Every line the process wrote to stdout so far. */
  stdout(): string[];
  /** The stdout lines that are JSON log lines, parsed. */
  logLines(): Record<string, unknown>[];
}

/**
 * The built gateway (dist/) as its own process, on a free port, with exactly `env` (plus PATH, PORT, and
 * SHUTDOWN_DRAIN_MS=0 unless `env` sets it: a test's stop does not wait out a load balancer): for what
 * only a process shows — its log on stdout, its exit, its process-wide tracer. Resolves once /health
 * answers; fails with its output if it exits first.
 */
export async function spawnGateway(env: NodeJS.ProcessEnv, script = 'dist/gateway/src/main.js', args: readonly string[] = []): Promise<GatewayProcess> {
  const port = env.PORT ?? String(await freePortBlock(1));
  const url = `http://127.0.0.1:${port}`;
  const spawned = spawnProcess({ label: script, args: [script, ...args], env: { PATH: process.env.PATH, SHUTDOWN_DRAIN_MS: '0', ...env, PORT: port } });
  const lines: string[] = [];
  let partial = '';
  spawned.child.stdout?.on('data', (chunk: Buffer) => {
    const text = partial + chunk.toString();
    const complete = text.split('\n');
    partial = complete.pop() ?? '';
    lines.push(...complete.filter((line) => line !== ''));
  });
  await waitUntilReady({ label: script, url: `${url}/health`, child: spawned.child, output: spawned.output });
  return {
    ...spawned,
    url,
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

/** Waits, without a deadline of its own (the test's timeout is the limit), until `found` answers something. */
export async function eventually<T>(found: () => T | undefined | Promise<T | undefined>): Promise<T> {
  for (;;) {
    const value = await found();
    if (value !== undefined) return value;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

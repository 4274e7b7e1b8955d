import { spawn, type ChildProcess } from 'node:child_process';
import { recentOutput, waitUntilReady } from '../../scripts/lib/processes.js';
import { freePortBlock } from './ports.js';

export interface GatewayProcess {
  readonly url: string;
  readonly child: ChildProcess;
  /** Every line the process wrote to stdout so far. */
  stdout(): string[];
  /** The stdout lines that are JSON log lines, parsed. */
  logLines(): Record<string, unknown>[];
  /** Its last lines, stdout and stderr (for messages). */
  output(): string;
  /** Exit code once it exited. */
  readonly exited: Promise<number | null>;
  /** SIGTERM, and its exit code. */
  stop(): Promise<number | null>;
}

/**
 * The built gateway (dist/) as its own process, on a free port, with exactly `env` (plus PATH and
 * PORT): for what only a process shows — its log on stdout, its exit, its process-wide tracer.
 * Resolves once /health answers; fails with its output if it exits first.
 */
export async function spawnGateway(env: NodeJS.ProcessEnv, script = 'dist/gateway/src/main.js', args: readonly string[] = []): Promise<GatewayProcess> {
  const port = env.PORT ?? String(await freePortBlock(1));
  const child = spawn(process.execPath, [script, ...args], { env: { PATH: process.env.PATH, ...env, PORT: port }, stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: string[] = [];
  let partial = '';
  child.stdout.on('data', (chunk: Buffer) => {
    const text = partial + chunk.toString();
    const complete = text.split('\n');
    partial = complete.pop() ?? '';
    lines.push(...complete.filter((line) => line !== ''));
  });
  const output = recentOutput(child, 50);
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const url = `http://127.0.0.1:${port}`;
  await waitUntilReady({ label: script, url: `${url}/health`, child, output });
  return {
    url,
    child,
    stdout: () => [...lines],
    logLines: () =>
      lines.flatMap((line) => {
        try {
          return [JSON.parse(line) as Record<string, unknown>];
        } catch {
          return [];
        }
      }),
    output,
    exited,
    stop: () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      return exited;
    },
  };
}

/** Waits, without a deadline of its own (the test's timeout is the limit), until `found` answers something. */
export async function eventually<T>(found: () => T | undefined): Promise<T> {
  for (;;) {
    const value = found();
    if (value !== undefined) return value;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

import { spawn, type ChildProcess, type SpawnOptionsWithStdioTuple } from 'node:child_process';

/** Why a process never became ready: it exited first (with what it printed last), or the wait was called off. */
export class NotReadyError extends Error {
  constructor(
    message: string,
    readonly exitCode?: number | null,
  ) {
    super(message);
    this.name = 'NotReadyError';
  }
}

/** How to tell that a process serves: its URL answers 200 (its /health), or, for a process that speaks no HTTP, `probe` answers true. */
export type Readiness = { readonly url: string } | { readonly probe: () => Promise<boolean> };

export type ReadinessWait = Readiness & {
  /** What to call it in messages. */
  readonly label: string;
  /** The process being waited for: if it exits first, the wait fails at once. */
  readonly child?: ChildProcess;
  /** Its recent output, for the message when it exits early. */
  readonly output?: () => string;
  /** Calls the wait off (an overall limit, a launch being stopped). */
  readonly signal?: AbortSignal;
};

const POLL_MS = 25;

/** How a process that exited ended: `code 1`, `signal SIGKILL`. */
export function howItEnded(child: ChildProcess): string {
  return child.exitCode === null ? `signal ${child.signalCode ?? ''}` : `code ${child.exitCode}`;
}

/** `; it printed:` and a process's recent output, for a message about it; nothing when it printed nothing. */
export function printedSuffix(output: (() => string) | undefined): string {
  const printed = output?.().trim();
  return printed ? `; it printed:\n${printed}` : '';
}

function answers(url: string): Promise<boolean> {
  return fetch(url, { signal: AbortSignal.timeout(2000) }).then(
    async (response) => {
      await response.body?.cancel();
      return response.ok;
    },
    () => false,
  );
}

/**
 * Waits until `url` answers 200 (or `probe` true), however long a busy machine takes, unless the process
 * exits first (a failed start fails the wait with its last output) or `signal` calls it off. Answers how
 * long it took, in ms. The one readiness wait of the launcher, the benchmarks and the tests.
 */
export async function waitUntilReady(wait: ReadinessWait): Promise<number> {
  const { label, child, output, signal } = wait;
  const serves = 'probe' in wait ? wait.probe : () => answers(wait.url);
  const started = performance.now();
  let exited: number | null | undefined;
  const onExit = (code: number | null) => (exited = code);
  child?.once('exit', onExit);
  try {
    for (;;) {
      if (child && (exited !== undefined || child.exitCode !== null || child.signalCode !== null)) {
        throw new NotReadyError(`${label} exited (${howItEnded(child)}) before it was ready${printedSuffix(output)}`, exited ?? child.exitCode);
      }
      if (signal?.aborted) throw new NotReadyError(`${label} was not ready yet: ${String(signal.reason ?? 'the wait was called off')}`);
      if (await serves()) return performance.now() - started;
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    }
  } finally {
    child?.off('exit', onExit);
  }
}

/** Keeps the last `lines` lines a process printed (stdout and stderr), for messages about it. */
function recentOutput(child: ChildProcess, lines: number): () => string {
  const kept: string[] = [];
  const keep = (chunk: Buffer) => {
    kept.push(...chunk.toString().split('\n').filter((line) => line !== ''));
    kept.splice(0, Math.max(0, kept.length - lines));
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  return () => kept.join('\n');
}

export interface SpawnedProcess {
  readonly label: string;
  readonly child: ChildProcess;
  /** Its last lines, stdout and stderr (for messages). */
  output(): string;
  /** Its exit code (null after a signal), once it exited. */
  readonly exited: Promise<number | null>;
  /** SIGTERM (unless it already exited), and its exit code. */
  stop(): Promise<number | null>;
}

export interface SpawnOptions extends Pick<SpawnOptionsWithStdioTuple<'ignore', 'pipe', 'pipe'>, 'env' | 'cwd'> {
  readonly label: string;
  readonly command?: string;
  readonly args: readonly string[];
  /** An IPC channel: a child that watches it ('disconnect') goes when its parent does. */
  readonly ipc?: boolean;
  /** 'ignore' where nobody reads it (a benchmark's measured process). */
  readonly stdout?: 'pipe' | 'ignore';
  /** How many of its last lines `output()` keeps (default 50). */
  readonly keepLines?: number;
}

/**
 * A process of the stack (the gateway, a service, a peer), its output kept for messages: the one spawn
 * of the launcher, the benchmarks and the tests. `command` defaults to this Node.
 */
export function spawnProcess({ label, command = process.execPath, args, env, cwd, ipc = false, stdout = 'pipe', keepLines = 50 }: SpawnOptions): SpawnedProcess {
  const child = spawn(command, args, { env, cwd, stdio: ['ignore', stdout, 'pipe', ...(ipc ? (['ipc'] as const) : [])] });
  const output = recentOutput(child, keepLines);
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return {
    label,
    child,
    output,
    exited,
    stop: () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      return exited;
    },
  };
}

/** `spawnProcess`, resolved once `readyUrl` answers 200 (failing with its output if it exits first). */
export async function spawnReady(options: SpawnOptions & { readonly readyUrl: string }): Promise<SpawnedProcess> {
  const spawned = spawnProcess(options);
  await waitUntilReady({ label: options.label, url: options.readyUrl, child: spawned.child, output: spawned.output });
  return spawned;
}

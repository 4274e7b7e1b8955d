import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { onTestFinished } from 'vitest';
import { eventually, within } from './wait.js';

/** How long a whole stack may take to start, or to stop, on a busy two-core machine. */
export const STACK_MS = 180_000;

export interface Launched {
  readonly child: ChildProcess;
  readonly output: () => string;
  /** Resolves once it printed its banner; fails, with what it printed, if it exits first or takes longer than STACK_MS. */
  banner(): Promise<void>;
  /** Its exit code, once it exited; fails, with what it printed, after STACK_MS. */
  exited(): Promise<number | null>;
}

/** `npm run <script>`, as a terminal runs it. */
export function npmRun(script: string, env: NodeJS.ProcessEnv): Launched {
  return run('npm', ['run', script], env);
}

/** The launcher itself (`args`: `--cluster`, `--services-only`): what the npm scripts run once the build is current. */
export function launcher(env: NodeJS.ProcessEnv, args: readonly string[] = []): Launched {
  return run(process.execPath, ['dist/scripts/start.js', ...args], env);
}

/**
 * Runs `command` in a process group of its own, so that a signal to the group is what Ctrl-C in a
 * terminal sends; whatever of the group still runs when the test is over is killed.
 */
function run(command: string, args: string[], env: NodeJS.ProcessEnv): Launched {
  // No load balancer to wait for: a stopped gateway closes at once (SHUTDOWN_DRAIN_MS=0) unless a test says otherwise.
  const child = spawn(command, args, { detached: true, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, SHUTDOWN_DRAIN_MS: '0', ...env } });
  onTestFinished(() => {
    if (child.exitCode === null && child.pid) process.kill(-child.pid, 'SIGKILL');
  });
  let output = '';
  const banner = new Promise<void>((resolve, reject) => {
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      if (output.includes('Ctrl-C stops everything')) resolve();
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.once('exit', () => reject(new Error(`exited before it was ready:\n${output}`)));
  });
  // A launch that is meant to fail never shows the banner: that is not an error of its own.
  banner.catch(() => undefined);
  const exit = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const label = [command, ...args].join(' ');
  return {
    child,
    output: () => output,
    banner: () => within(() => `${label} to print its banner; it printed:\n${output}`, banner, STACK_MS),
    exited: () => within(() => `${label} to exit; it printed:\n${output}`, exit, STACK_MS),
  };
}

/** Resolves once none of `pids` is alive (each exits once its parent, which npm waited for, reaped it). */
export async function allGone(pids: number[]): Promise<void> {
  await eventually(() => `every process of the stack to be gone; still alive: ${pidsAlive(pids).join(', ')}`, () => pidsAlive(pids).length === 0);
}

function pidsAlive(pids: number[]): number[] {
  return pids.filter((pid) => {
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  });
}

/** Every process below `pid` (npm, the launcher, and every process it started), by the process tree. */
export function descendants(pid: number): number[] {
  let children: number[];
  try {
    children = execFileSync('pgrep', ['-P', String(pid)], { encoding: 'utf8' }).trim().split('\n').map(Number);
  } catch {
    // pgrep exits 1 when there are none
    return [];
  }
  return children.flatMap((child) => [child, ...descendants(child)]);
}

/** The command line a process was started with (Linux's /proc): its words. */
export function commandOf(pid: number): string[] {
  // Each word ends with a NUL: the split leaves an empty last word.
  return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').slice(0, -1);
}

/** The environment a process started with (Linux's /proc): what the launcher handed it. */
export function environmentOf(pid: number): Record<string, string> {
  return Object.fromEntries(
    readFileSync(`/proc/${pid}/environ`, 'utf8')
      .split('\0')
      .filter((entry) => entry.includes('='))
      .map((entry) => [entry.slice(0, entry.indexOf('=')), entry.slice(entry.indexOf('=') + 1)]),
  );
}

/** The one process of a launched stack (the launched process itself included) whose command line `matches`. */
function onlyProcess(launched: Launched, what: string, matches: (command: string[]) => boolean): number {
  const pid = launched.child.pid as number;
  const found = [pid, ...descendants(pid)].filter((candidate) => matches(commandOf(candidate)));
  if (found.length !== 1) throw new Error(`expected one ${what} process, found ${found.length}; it printed:\n${launched.output()}`);
  return found[0] as number;
}

/** The process of a launched stack that runs the reference service `name` (its command line ends with its name). */
export function serviceProcess(launched: Launched, name: string): number {
  return onlyProcess(launched, name, (command) => command.at(-1) === name && command.at(-2)?.endsWith('services/main.js') === true);
}

/** The launcher's own process (below npm, when run as `npm run`; the launched process itself otherwise). */
export function launcherProcess(launched: Launched): number {
  return onlyProcess(launched, 'launcher', (command) => command.some((word) => word.endsWith('scripts/start.js')));
}

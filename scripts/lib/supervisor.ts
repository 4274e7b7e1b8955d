import { setTimeout as sleep } from 'node:timers/promises';
import { NotReadyError, howItEnded, printedSuffix, waitUntilReady, type Readiness, type SpawnedProcess } from './processes.js';

/** When a supervised process is started again, and when it is given up on. */
export interface RestartPolicy {
  /** The delay before the first restart, doubled at each further one until the process stays up `stableMs`. */
  readonly firstDelayMs: number;
  readonly maxDelayMs: number;
  /** Up that long (from serving to its exit), it counts as well again: its next restart waits `firstDelayMs`. */
  readonly stableMs: number;
  /** Starts in a row that exit before serving, at which it is given up on: no restart helps a start that keeps failing. */
  readonly maxFailedStarts: number;
}

/** Compose's `restart: unless-stopped`, with the backoff Kubernetes gives a crash-looping container, shortened for one machine. */
const RESTART_POLICY: RestartPolicy = { firstDelayMs: 250, maxDelayMs: 10_000, stableMs: 30_000, maxFailedStarts: 5 };

/** The delay before the `nth` restart since the process last stayed up (1 for the first). */
export function restartDelay(nth: number, policy: RestartPolicy = RESTART_POLICY): number {
  return Math.min(policy.firstDelayMs * 2 ** (nth - 1), policy.maxDelayMs);
}

export interface SuperviseOptions {
  readonly label: string;
  /** Starts the process anew: the same command and environment (so the same port) each time. */
  readonly spawn: () => SpawnedProcess;
  readonly readiness: Readiness;
  /** How long a restarted process may take to serve (START_TIMEOUT_MS) before it is given up on. */
  readonly startTimeoutMs: number;
  /** Says one line: a restart, a return to service. */
  readonly announce: (line: string) => void;
  /** It was given up on after it had served (its restarts keep failing): why, with its last output. */
  readonly gaveUp: (reason: string) => void;
  /** Aborted when the stack stops: from then on nothing is restarted, and a restart waiting for its delay is called off. */
  readonly shutdown: AbortSignal;
  readonly policy?: RestartPolicy;
}

/**
 * One process of a stack, kept running until `shutdown`: whenever it exits it is started again after
 * `restartDelay`, with the same command and environment, and each restart and each return to service is
 * announced in one line. A process that exits before it serves `maxFailedStarts` times in a row, or
 * whose restart does not serve within `startTimeoutMs`, is given up on: its start (`start`) fails, or,
 * once it had served, `gaveUp` is told. A process that serves and then exits again is restarted
 * for as long as it does (the delay at its cap): it may serve for a while each time.
 * Restarted only once it exited: its port is free by then (the kernel closes its sockets as it exits).
 */
export class Supervised {
  readonly label: string;
  readonly #options: SuperviseOptions;
  readonly #policy: RestartPolicy;
  #process: SpawnedProcess;
  #restarts = 0;
  /** Restarts since it last stayed up `stableMs`: what the delay doubles with. */
  #streak = 0;
  #failedStarts = 0;

  /** Spawns it at once; `start` waits for it. */
  constructor(options: SuperviseOptions) {
    this.label = options.label;
    this.#options = options;
    this.#policy = options.policy ?? RESTART_POLICY;
    this.#process = options.spawn();
  }

  /** The process running now (the last one, once the stack stopped). */
  get process(): SpawnedProcess {
    return this.#process;
  }

  /**
   * Resolves once it serves, restarted each time it exits first (up to `maxFailedStarts` starts in a
   * row); from then on it is kept running. `limit` bounds the whole wait. Answers how long it took, in ms.
   */
  async start(limit: AbortSignal): Promise<number> {
    const started = performance.now();
    await this.#untilServing(limit);
    return performance.now() - started;
  }

  /** SIGTERM to the running process, and its exit: after `shutdown`, or it is restarted. */
  stop(): Promise<number | null> {
    return this.#process.stop();
  }

  /**
   * Waits until the current process serves, starting it again each time it exits first. `limit` bounds
   * the whole wait (the first start); without it (a restart), each attempt has `startTimeoutMs` to serve.
   */
  async #untilServing(limit?: AbortSignal): Promise<void> {
    for (;;) {
      const { child, output } = this.#process;
      const bound = limit ?? AbortSignal.timeout(this.#options.startTimeoutMs);
      try {
        await waitUntilReady({ ...this.#options.readiness, label: this.label, child, output, signal: AbortSignal.any([bound, this.#options.shutdown]) });
      } catch (error) {
        if (!(error instanceof NotReadyError) || this.#options.shutdown.aborted) throw error;
        if (error.exitCode === undefined) {
          // Still starting when its time ran out: the first start's limit is reported by the launcher, for every process it names.
          throw limit ? error : new NotReadyError(`${this.label} still starting after ${this.#options.startTimeoutMs / 1000} s (START_TIMEOUT_MS)${printedSuffix(output)}`);
        }
        this.#failedStarts += 1;
        if (this.#failedStarts >= this.#policy.maxFailedStarts) {
          throw new NotReadyError(`${this.label} exited (${howItEnded(child)}) before it was ready, ${this.#failedStarts} times in a row${printedSuffix(output)}`, error.exitCode);
        }
        await this.#restartAfter(`exited (${howItEnded(child)}) before it was ready`, limit);
        continue;
      }
      this.#failedStarts = 0;
      this.#watch();
      return;
    }
  }

  /** Announces the restart, waits its delay (called off by `shutdown`, or by `limit`), and spawns the process again. */
  async #restartAfter(why: string, limit?: AbortSignal): Promise<void> {
    this.#restarts += 1;
    this.#streak += 1;
    const delay = restartDelay(this.#streak, this.#policy);
    this.#options.announce(`${this.label} ${why}; restarting in ${delay / 1000} s (restart ${this.#restarts})`);
    const calledOff = limit ? AbortSignal.any([limit, this.#options.shutdown]) : this.#options.shutdown;
    try {
      await sleep(delay, undefined, { signal: calledOff });
    } catch {
      throw new NotReadyError(`${this.label} was not ready yet: ${String(calledOff.reason)}`);
    }
    this.#process = this.#options.spawn();
  }

  /** Once it serves: restarts it when it exits, unless the stack is stopping. */
  #watch(): void {
    const { child, exited } = this.#process;
    const servedAt = performance.now();
    void exited.then(async () => {
      if (this.#options.shutdown.aborted) return;
      const exitedAt = performance.now();
      if (exitedAt - servedAt >= this.#policy.stableMs) this.#streak = 0;
      try {
        await this.#restartAfter(`exited (${howItEnded(child)})`);
        await this.#untilServing();
        this.#options.announce(`${this.label} serving again in ${((performance.now() - exitedAt) / 1000).toFixed(1)} s`);
      } catch (error) {
        if (this.#options.shutdown.aborted) return;
        this.#options.gaveUp(error instanceof Error ? error.message : String(error));
      }
    });
  }
}

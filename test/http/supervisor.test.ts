import { describe, expect, it, onTestFinished } from 'vitest';
import { NotReadyError, spawnProcess } from '../../scripts/lib/processes.js';
import { Supervised, type RestartPolicy } from '../../scripts/lib/supervisor.js';
import { eventually, waitingFor } from '../helpers/wait.js';

/** The launcher's policy, its delays shortened: 20 ms doubling to 80 ms, three failed starts in a row. */
const QUICK: RestartPolicy = { firstDelayMs: 20, maxDelayMs: 80, stableMs: 60_000, maxFailedStarts: 3 };

/** A process that serves at once (as far as its probe says) and exits with code 3 after `ms`. */
const exitsAfter = (ms: number) => `setTimeout(() => process.exit(3), ${ms})`;

/**
 * A supervised `node -e <script(nth)>` (nth: 1 for the first spawn), serving when `serves(nth, output)`
 * says so; what it announced and why it was given up on, kept. Stopped when the test is over.
 */
function supervise(script: (nth: number) => string, serves: (nth: number, output: () => string) => boolean | Promise<boolean>, options: { policy?: Partial<RestartPolicy>; startTimeoutMs?: number } = {}) {
  const announced: string[] = [];
  const gaveUp: string[] = [];
  const shutdown = new AbortController();
  let spawns = 0;
  const supervised: Supervised = new Supervised({
    label: 'probe',
    spawn: () => {
      spawns += 1;
      return spawnProcess({ label: 'probe', args: ['-e', script(spawns)] });
    },
    readiness: { probe: async () => serves(spawns, () => supervised.process.output()) },
    startTimeoutMs: options.startTimeoutMs ?? 20_000,
    announce: (line) => announced.push(line),
    gaveUp: (reason) => gaveUp.push(reason),
    shutdown: shutdown.signal,
    policy: { ...QUICK, ...options.policy },
  });
  onTestFinished(async () => {
    shutdown.abort();
    await supervised.stop();
  });
  return { supervised, announced, gaveUp, shutdown, spawns: () => spawns };
}

// Real processes (`node -e`), the policy's delays shortened: what the launcher does with each of its processes.
describe('a supervised process', () => {
  it('is restarted each time it exits after serving, the delay doubling up to its cap, each restart and return told in one line', async () => {
    const { supervised, announced } = supervise(() => exitsAfter(50), () => true);
    await supervised.start(waitingFor('the first start'));
    await eventually(() => `four restarts and returns; announced:\n${announced.join('\n')}`, () => announced.length >= 8);
    expect(announced.slice(0, 8).map((line) => line.replace(/in \d+\.\d s$/, 'in … s'))).toEqual([
      'probe exited (code 3); restarting in 0.02 s (restart 1)',
      'probe serving again in … s',
      'probe exited (code 3); restarting in 0.04 s (restart 2)',
      'probe serving again in … s',
      'probe exited (code 3); restarting in 0.08 s (restart 3)',
      'probe serving again in … s',
      'probe exited (code 3); restarting in 0.08 s (restart 4)',
      'probe serving again in … s',
    ]);
  });

  it('waits the first delay again once it stayed up `stableMs`', async () => {
    // Up 800 ms, eight times `stableMs`: a margin for a busy machine's late readiness probe.
    const { supervised, announced } = supervise(() => exitsAfter(800), () => true, { policy: { stableMs: 100 } });
    await supervised.start(waitingFor('the first start'));
    const restarts = () => announced.filter((line) => line.includes('restarting'));
    await eventually(() => `three restarts; announced:\n${announced.join('\n')}`, () => restarts().length >= 3);
    expect(restarts().slice(0, 3)).toEqual(['probe exited (code 3); restarting in 0.02 s (restart 1)', 'probe exited (code 3); restarting in 0.02 s (restart 2)', 'probe exited (code 3); restarting in 0.02 s (restart 3)']);
  });

  it('fails its start, with what it printed last, when it exits before serving `maxFailedStarts` times in a row', async () => {
    const { supervised, announced, spawns } = supervise((nth) => `console.error('attempt ${nth}: cannot start'); process.exit(2)`, () => false);
    const failure = await supervised.start(waitingFor('the start to fail')).catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(NotReadyError);
    expect((failure as NotReadyError).message).toBe('probe exited (code 2) before it was ready, 3 times in a row; it printed:\nattempt 3: cannot start');
    expect(announced).toEqual(['probe exited (code 2) before it was ready; restarting in 0.02 s (restart 1)', 'probe exited (code 2) before it was ready; restarting in 0.04 s (restart 2)']);
    expect(spawns()).toBe(3);
  });

  it('is given up on, with what it printed last, when it served and its restarts then keep exiting before serving', async () => {
    const { supervised, announced, gaveUp } = supervise((nth) => (nth === 1 ? exitsAfter(50) : `console.error('attempt ${nth}: cannot start'); process.exit(2)`), (nth) => nth === 1);
    await supervised.start(waitingFor('the first start'));
    await eventually(() => `it to be given up on; announced:\n${announced.join('\n')}`, () => gaveUp.length > 0);
    expect(gaveUp).toEqual(['probe exited (code 2) before it was ready, 3 times in a row; it printed:\nattempt 4: cannot start']);
    expect(announced).toEqual([
      'probe exited (code 3); restarting in 0.02 s (restart 1)',
      'probe exited (code 2) before it was ready; restarting in 0.04 s (restart 2)',
      'probe exited (code 2) before it was ready; restarting in 0.08 s (restart 3)',
    ]);
  });

  it('is given up on when a restart does not serve within `startTimeoutMs`', async () => {
    // The restart is found not ready only once it printed: the message has its output, however slowly it starts.
    const serves = async (nth: number, output: () => string) => {
      if (nth === 1) return true;
      await eventually('the restart to print', () => output().includes('stuck'));
      return false;
    };
    const { supervised, gaveUp } = supervise((nth) => (nth === 1 ? exitsAfter(50) : `console.log('stuck'); setInterval(() => undefined, 1000)`), serves, { startTimeoutMs: 300 });
    await supervised.start(waitingFor('the first start'));
    await eventually('it to be given up on', () => gaveUp.length > 0);
    expect(gaveUp).toEqual(['probe still starting after 0.3 s (START_TIMEOUT_MS); it printed:\nstuck']);
  });

  it('is not restarted once the stack stops', async () => {
    const { supervised, announced, shutdown, spawns } = supervise(() => 'setInterval(() => undefined, 1000)', () => true);
    await supervised.start(waitingFor('the first start'));
    shutdown.abort();
    expect(await supervised.stop()).toBeNull();
    // Its exit was seen before `stop()` resolved here: a restart would have been announced by now.
    expect(announced).toEqual([]);
    expect(spawns()).toBe(1);
  });
});

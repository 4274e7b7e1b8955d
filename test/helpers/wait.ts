import { vi } from 'vitest';

/**
 * How long any wait of the suite lasts at most: generous for a busy two-core machine, and below the test
 * timeout (vitest.config.ts) so that the wait's own message, naming what never came, is the one reported.
 */
export const WAIT_MS = 20_000;
/** `vi.waitFor`'s options for the same bound, polling often (the conditions are cheap). */
export const WAIT = { timeout: WAIT_MS, interval: 10 } as const;

/** What a wait is for; a function when the message should say how things stood when it gave up. */
type WaitedFor = string | (() => string);
const named = (what: WaitedFor) => (typeof what === 'string' ? what : what());

/**
 * Polls `found` until it answers something other than undefined or false, and answers that; fails after
 * `timeoutMs` saying what it waited for (and how the last attempt failed, if it threw).
 */
export async function eventually<T>(what: WaitedFor, found: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs = WAIT_MS): Promise<T> {
  let failure: unknown;
  try {
    return await vi.waitFor(
      async () => {
        failure = undefined;
        const value = await Promise.resolve()
          .then(found)
          .catch((error: unknown) => {
            failure = error;
            throw error;
          });
        if (value === undefined || value === false) throw new Error('not yet');
        return value;
      },
      { ...WAIT, timeout: timeoutMs },
    );
  } catch (error) {
    throw new Error(`waited ${timeoutMs} ms for ${named(what)}${failure === undefined ? '' : `; the last attempt failed: ${String(failure)}`}`, { cause: error });
  }
}

/** Awaits `event` (something the test cannot poll: an arrival, an exit) for at most `timeoutMs`; fails saying what it waited for. */
export async function within<T>(what: WaitedFor, event: Promise<T>, timeoutMs = WAIT_MS): Promise<T> {
  // Made here, so that its stack shows who waited, not the timer.
  const failure = new Error();
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(Object.assign(failure, { message: `waited ${timeoutMs} ms for ${named(what)}` })), timeoutMs);
  });
  try {
    return await Promise.race([event, expired]);
  } finally {
    clearTimeout(timer);
  }
}

/** A signal that aborts after `timeoutMs`, its reason saying what was waited for: the bound of a wait that takes a signal (waitUntilReady). */
export function waitingFor(what: string, timeoutMs = WAIT_MS): AbortSignal {
  const controller = new AbortController();
  setTimeout(() => controller.abort(`waited ${timeoutMs} ms for ${what}`), timeoutMs).unref();
  return controller.signal;
}

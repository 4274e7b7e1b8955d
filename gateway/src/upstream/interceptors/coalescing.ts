import type { Dispatcher } from 'undici';
import type { UpstreamName } from '../../../../shared/upstreams.js';
import type { AttemptSink, UpstreamAttempt, UpstreamOutcome } from '../../observability/attempts.js';
import { callOf, type DispatchWithCall, type UpstreamCall } from '../call.js';
import { ResponseTooLargeError } from '../failures.js';
import type { Controller, Headers } from './handler.js';

const COALESCED_METHODS = new Set(['GET', 'HEAD']);

/**
 * Headers that differ per client request without changing the answer: not part of what makes two calls
 * the same. `X-Forwarded-*` are not among them: they say where the client is, which an upstream may
 * answer by (rights by region, limits per address), so two clients at different addresses never share.
 */
const PER_REQUEST_HEADERS = new Set(['x-request-id', 'traceparent', 'tracestate']);

/**
 * What makes two calls one, or undefined for a call that is never shared (another method, a body): all
 * the upstream receives — method, origin, path and query, every header but the per-request ones, so
 * `Authorization`, the identity headers and the client's address too — and how the answer is read
 * (redirects, body cap, timeouts), so that each caller gets the answer it would have got alone; and the
 * upstream's generation as this replica knows it, so that a call made after a change (through this replica, or heard on the
 * bus) never joins one made before it, whose answer may predate the change.
 */
function keyOf(options: Dispatcher.DispatchOptions, call: UpstreamCall, generation: string): string | undefined {
  if (!COALESCED_METHODS.has(options.method) || (options.body !== undefined && options.body !== null)) return undefined;
  // The forwarding interceptor above always makes them a plain object.
  const headers = (options.headers ?? {}) as Record<string, string | string[]>;
  // Built on every GET, whether it finds a twin or not: one string of length-prefixed parts (no two calls
  // make the same one), headers sorted by their lower-case names, as the upstream reads them.
  const sorted: [string, string | string[]][] = [];
  for (const name in headers) {
    const lower = name.toLowerCase();
    if (!PER_REQUEST_HEADERS.has(lower)) sorted.push([lower, headers[name] as string | string[]]);
  }
  sorted.sort(byName);
  let key = `${part(options.method)}${part(String(options.origin))}${part(options.path)}${sorted.length}`;
  for (const [name, value] of sorted) key += part(name) + (typeof value === 'string' ? part(value) : `${value.length}[${value.map(part).join('')}`);
  return `${key}${part(String(call.redirects))}${part(String(call.responseLimitBytes))}${part(String(call.timeoutMs))}${part(String(call.deadline))}${part(generation)}`;
}

/** A part of a key: its length first, so parts never run into one another. */
const part = (text: string) => `${text.length}:${text}`;

const byName = ([a]: [string, unknown], [b]: [string, unknown]) => (a < b ? -1 : a > b ? 1 : 0);

/** One caller of a shared call, and the controller it is given: pausing or leaving touches no one else. */
class Participant implements Controller {
  paused = false;
  aborted = false;
  reason: Error | null = null;
  /** Chunks of the answer not yet handed to this caller (it was paused), and their size. */
  queue: Buffer[] = [];
  queued = 0;
  /** The answer ended while chunks were still queued: the end is handed on after them. */
  trailers: Headers | undefined;
  /** Attempts of the shared call recorded as started for this caller and not yet as ended. */
  openAttempts = 0;

  constructor(
    private readonly shared: SharedCall,
    readonly handler: Dispatcher.DispatchHandler,
    readonly attempts: AttemptSink | undefined,
  ) {}

  abort(reason: Error): void {
    this.shared.leave(this, reason);
  }

  pause(): void {
    if (this.aborted) return;
    this.paused = true;
    this.shared.flow();
  }

  resume(): void {
    if (this.aborted || !this.paused) return;
    this.paused = false;
    this.shared.drain(this);
  }
}

/**
 * One upstream call and everyone waiting on it. It is nobody's own: it is made once (one verdict for the
 * breaker below, one retry, one count in the metrics), hands every event to each caller still there,
 * reads the upstream while any caller wants more and pauses it while all are paused, holds at most
 * `maxQueuedBytes` for a caller that lags behind the others (past that, that caller alone is cut off),
 * and is cancelled only when the last caller has left. Its attempts are recorded on each caller's
 * access line (a caller that leaves has its share end there as `aborted`).
 */
class SharedCall implements Dispatcher.DispatchHandler, AttemptSink {
  private readonly callers = new Set<Participant>();
  private readonly startedAt = performance.now();
  private controller: Controller | undefined;
  private context: unknown;
  private requestStarted = false;
  private settled = false;
  private cancelled: Error | undefined;
  private upstreamPaused = false;
  private attemptsInFlight = 0;

  constructor(
    private readonly service: UpstreamName,
    private readonly maxQueuedBytes: number,
    /** Takes the call out of the map of calls that can be joined. */
    readonly forget: () => void,
  ) {}

  join(handler: Dispatcher.DispatchHandler, attempts: AttemptSink | undefined): void {
    // A request whose own calls join one another (aliases of one page) has the call on its line once.
    let recorded = true;
    for (const other of this.callers) recorded &&= other.attempts !== attempts;
    const caller = new Participant(this, handler, recorded ? attempts : undefined);
    this.callers.add(caller);
    for (; caller.openAttempts < this.attemptsInFlight; caller.openAttempts += 1) caller.attempts?.started();
    if (this.requestStarted) this.tell(caller, () => handler.onRequestStart?.(caller, this.context));
  }

  /** A caller left (its client went away, or it read what it needed): the call goes on for the others. */
  leave(caller: Participant, reason: Error): void {
    this.drop(caller, reason, 'aborted');
  }

  private drop(caller: Participant, error: Error, outcome: UpstreamOutcome): void {
    if (!this.callers.has(caller)) return;
    this.detach(caller, error);
    const ms = Math.round((performance.now() - this.startedAt) * 10) / 10;
    for (; caller.openAttempts > 0; caller.openAttempts -= 1) caller.attempts?.ended({ service: this.service, status: outcome, ms });
    this.tell(caller, () => caller.handler.onResponseError?.(caller, error));
    if (this.callers.size === 0) this.cancel(error);
    else this.flow();
  }

  private detach(caller: Participant, error?: Error): void {
    this.callers.delete(caller);
    caller.queue = [];
    caller.queued = 0;
    if (error) {
      caller.aborted = true;
      caller.reason = error;
    }
  }

  private cancel(reason: Error): void {
    if (this.settled) return;
    this.forget();
    this.cancelled = reason;
    this.controller?.abort(reason);
  }

  /** Hands an event to one caller: a caller that throws is cut off, the others never see it. */
  private tell(caller: Participant, event: () => void): void {
    try {
      event();
    } catch (error) {
      if (this.callers.has(caller)) this.drop(caller, error as Error, 'error');
    }
  }

  /** The upstream is read while any caller wants more, and paused while every one is paused. */
  flow(): void {
    if (this.settled || !this.controller) return;
    let wanted = false;
    for (const caller of this.callers) wanted ||= !caller.paused;
    if (wanted === !this.upstreamPaused) return;
    this.upstreamPaused = !wanted;
    if (wanted) this.controller.resume();
    else this.controller.pause();
  }

  /** A caller resumed: what it missed while paused, then the end if it came meanwhile. */
  drain(caller: Participant): void {
    while (!caller.paused && this.callers.has(caller) && caller.queue.length > 0) {
      const chunk = caller.queue.shift() as Buffer;
      caller.queued -= chunk.length;
      this.tell(caller, () => caller.handler.onResponseData?.(caller, chunk));
    }
    if (caller.trailers && !caller.paused && caller.queue.length === 0 && this.callers.has(caller)) this.finish(caller, caller.trailers);
    this.flow();
  }

  private finish(caller: Participant, trailers: Headers): void {
    this.detach(caller);
    this.tell(caller, () => caller.handler.onResponseEnd?.(caller, trailers));
  }

  started(): void {
    this.attemptsInFlight += 1;
    for (const caller of this.callers) {
      caller.openAttempts += 1;
      caller.attempts?.started();
    }
  }

  ended(attempt: UpstreamAttempt): void {
    this.attemptsInFlight -= 1;
    for (const caller of this.callers) {
      if (caller.openAttempts === 0) continue;
      caller.openAttempts -= 1;
      caller.attempts?.ended(attempt);
    }
  }

  onRequestStart(controller: Controller, context: unknown): void {
    this.controller = controller;
    if (this.cancelled) {
      controller.abort(this.cancelled);
      return;
    }
    // Again on a retry: the callers were told at the first attempt.
    if (this.requestStarted) return;
    this.requestStarted = true;
    this.context = context;
    this.forEachPresent((caller) => this.tell(caller, () => caller.handler.onRequestStart?.(caller, context)));
  }

  onResponseStart(controller: Controller, statusCode: number, headers: Headers, statusMessage?: string): void {
    this.controller = controller;
    // Nobody joins an answer already under way: a later caller makes a call of its own.
    this.forget();
    this.forEachPresent((caller) => this.tell(caller, () => caller.handler.onResponseStart?.(caller, statusCode, headers, statusMessage)));
    this.flow();
  }

  onResponseData(_controller: Controller, chunk: Buffer): void {
    // One copy for every caller that must wait for it (the chunk may be a view of a larger read buffer).
    let kept: Buffer | undefined;
    this.forEachPresent((caller) => {
      if (!caller.paused && caller.queue.length === 0) {
        this.tell(caller, () => caller.handler.onResponseData?.(caller, chunk));
        return;
      }
      kept ??= Buffer.from(chunk);
      caller.queue.push(kept);
      caller.queued += kept.length;
      if (caller.queued > this.maxQueuedBytes) this.drop(caller, new ResponseTooLargeError(`fell more than ${this.maxQueuedBytes} bytes behind the answer it shares`), 'too_large');
    });
    this.flow();
  }

  onResponseEnd(_controller: Controller, trailers: Headers): void {
    this.settle();
    this.forEachPresent((caller) => {
      if (caller.queue.length > 0) caller.trailers = trailers;
      else this.finish(caller, trailers);
    });
  }

  onResponseError(_controller: Controller, error: Error): void {
    this.settle();
    this.forEachPresent((caller) => {
      this.detach(caller, error);
      this.tell(caller, () => caller.handler.onResponseError?.(caller, error));
    });
  }

  /** Visits the callers there now, each only while it is still there (one may leave, or be cut off, while another is told). */
  private forEachPresent(visit: (caller: Participant) => void): void {
    for (const caller of [...this.callers]) if (this.callers.has(caller)) visit(caller);
  }

  private settle(): void {
    this.settled = true;
    this.forget();
  }
}

/**
 * Identical GETs and HEADs in flight to one upstream (see `keyOf`: one identity's call never serves
 * another) share one call and its answer. It sits above the cache, the breaker and the retry, so a
 * shared call is looked up, judged and retried once, and below the forwarding headers, so it compares
 * what the upstream would receive.
 *
 * Why not undici's `interceptors.deduplicate`: it gives the call to the first caller's handler, so that
 * caller leaving cancels it for everyone joined and that caller's pace is the upstream's; a joiner that
 * leaves is never told it has (its request would never settle). Here no caller owns the call. Memory
 * is bounded per shared call: a caller's queue never passes `maxQueuedBytes` (the body cap of calls
 * read whole, `streamedQueueBytes` for streamed ones), and the queues share their chunks.
 */
export function coalescingInterceptor(service: UpstreamName, streamedQueueBytes: number, onJoin: () => void, generation: () => string = () => ''): Dispatcher.DispatcherComposeInterceptor {
  return (dispatch) => {
    const inFlight = new Map<string, SharedCall>();
    return (options, handler) => {
      const call = callOf(options);
      const key = keyOf(options, call, generation());
      if (key === undefined) return dispatch(options, handler);
      const joined = inFlight.get(key);
      if (joined) {
        onJoin();
        joined.join(handler, call.caller.attempts);
        return true;
      }
      const shared: SharedCall = new SharedCall(service, call.responseLimitBytes ?? streamedQueueBytes, () => {
        if (inFlight.get(key) === shared) inFlight.delete(key);
      });
      shared.join(handler, call.caller.attempts);
      inFlight.set(key, shared);
      const sharedOptions: DispatchWithCall = { ...options, call: { ...call, caller: { ...call.caller, attempts: shared } } };
      try {
        return dispatch(sharedOptions, shared);
      } catch (error) {
        // Refused before it started (an open circuit): the caller hears it as it would alone.
        shared.forget();
        throw error;
      }
    };
  };
}

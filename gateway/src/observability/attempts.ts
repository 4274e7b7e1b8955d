import type { UpstreamName } from '../../../shared/upstreams.js';

/** What a call ended with, for `gateway_upstream_requests_total`: the upstream's status, or why there was none. */
export type UpstreamOutcome = number | 'timeout' | 'unreachable' | 'truncated' | 'too_large' | 'aborted' | 'error';

/** Where a cached answer was found: this process's layer, or the one every replica shares (Redis). */
export type CacheLayer = 'local' | 'shared';

/** One attempt at an upstream call, as the access log shows it. */
export interface UpstreamAttempt {
  readonly service: UpstreamName;
  /** The upstream's status, or why there was none (timeout, unreachable…). */
  readonly status: UpstreamOutcome;
  /** Milliseconds to the response headers (or to the failure). */
  readonly ms: number;
  /** Answered from the cache of upstream answers, from this layer (this process's, or Redis's): no call was made. */
  readonly cache?: CacheLayer;
}

/**
 * The upstream attempts of one request, for its access line: each is counted when it starts and
 * recorded when it ends, so the line can wait for calls still ending (the client went away, the call
 * is being cancelled) and show how they ended.
 */
export class AttemptLog {
  readonly attempts: UpstreamAttempt[] = [];
  private inFlight = 0;
  private onSettled: (() => void) | undefined;

  started(): void {
    this.inFlight += 1;
  }

  ended(attempt: UpstreamAttempt): void {
    this.attempts.push(attempt);
    this.inFlight -= 1;
    if (this.inFlight === 0 && this.onSettled) {
      const settled = this.onSettled;
      this.onSettled = undefined;
      settled();
    }
  }

  /** No attempt is in flight. */
  get settled(): boolean {
    return this.inFlight === 0;
  }

  /** Calls `then` once no attempt is in flight: at once when none is. */
  whenSettled(then: () => void): void {
    if (this.inFlight === 0) then();
    else this.onSettled = then;
  }
}

/** Where a call's attempts are recorded: a request's AttemptLog, or a shared call handing them on to each caller's. */
export type AttemptSink = Pick<AttemptLog, 'started' | 'ended'>;


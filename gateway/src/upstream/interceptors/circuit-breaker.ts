import type { Dispatcher } from 'undici';
import type { CircuitBreaker } from '../breaker.js';
import { callOf } from '../call.js';
import { CircuitOpenError, failureOf, isUpstreamFault } from '../failures.js';
import { PassThroughHandler, type Controller, type Headers } from './handler.js';

class VerdictHandler extends PassThroughHandler {
  private judged = false;

  constructor(
    next: Dispatcher.DispatchHandler,
    private readonly breaker: CircuitBreaker,
    private readonly probe: boolean,
    private readonly requestId: string,
  ) {
    super(next);
  }

  override onResponseStart(controller: Controller, statusCode: number, headers: Headers, statusMessage?: string): void {
    this.judged = true;
    if (statusCode >= 500) this.breaker.failed(this.probe, this.requestId);
    else this.breaker.succeeded(this.probe, this.requestId);
    super.onResponseStart(controller, statusCode, headers, statusMessage);
  }

  override onResponseError(controller: Controller, error: Error): void {
    if (!this.judged) {
      this.judged = true;
      if (isUpstreamFault(failureOf(error, false))) this.breaker.failed(this.probe, this.requestId);
      else this.breaker.released(this.probe);
    }
    super.onResponseError(controller, error);
  }
}

/**
 * The upstream's circuit breaker in front of its pool: a call it refuses fails at once with
 * CircuitOpenError (no connection, no retry); a call it admits reports how the upstream did, judged on
 * the status line (5xx is a failure) or on the error that came instead of one.
 */
export function circuitBreakerInterceptor(breaker: CircuitBreaker): Dispatcher.DispatcherComposeInterceptor {
  return (dispatch) => (options, handler) => {
    const admission = breaker.admit();
    if (!admission.admitted) throw new CircuitOpenError(admission.retryAfterMs);
    return dispatch(options, new VerdictHandler(handler, breaker, admission.probe, callOf(options).caller.requestId));
  };
}

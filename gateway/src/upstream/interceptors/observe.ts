import type { Dispatcher } from 'undici';
import type { Logger } from '../../observability/logger.js';
import { secondsSince, type GatewayMetrics } from '../../observability/metrics.js';
import { UPSTREAMS, type UpstreamName } from '../../../../shared/upstreams.js';
import { callOf, type UpstreamCall } from '../call.js';
import type { UpstreamOutcome } from '../../observability/attempts.js';
import { failureOf, outcomeOf } from '../failures.js';
import { PassThroughHandler, type Controller, type Headers } from './handler.js';

/** Where each attempt at an upstream call is reported once it ends. */
export interface UpstreamObservers {
  readonly metrics: GatewayMetrics;
  readonly logger: Logger;
}

class ObservingHandler extends PassThroughHandler {
  private readonly started = process.hrtime.bigint();
  private status: number | undefined;
  private seconds = 0;

  constructor(
    next: Dispatcher.DispatchHandler,
    private readonly observers: UpstreamObservers,
    private readonly upstream: UpstreamName,
    private readonly method: string,
    private readonly call: UpstreamCall,
  ) {
    super(next);
    call.caller.attempts?.started();
  }

  override onResponseStart(controller: Controller, statusCode: number, headers: Headers, statusMessage?: string): void {
    this.status = statusCode;
    this.seconds = secondsSince(this.started);
    super.onResponseStart(controller, statusCode, headers, statusMessage);
  }

  override onResponseEnd(controller: Controller, trailers: Headers): void {
    this.report(this.status ?? 'error', this.seconds);
    super.onResponseEnd(controller, trailers);
  }

  override onResponseError(controller: Controller, error: Error): void {
    this.report(outcomeOf(failureOf(error, this.status !== undefined), this.status), this.status === undefined ? secondsSince(this.started) : this.seconds);
    super.onResponseError(controller, error);
  }

  private reported = false;

  report(outcome: UpstreamOutcome, seconds: number): void {
    if (this.reported) return;
    this.reported = true;
    this.observers.metrics.observeUpstream(this.upstream, this.method, outcome, seconds);
    const ms = Math.round(seconds * 10_000) / 10;
    this.call.caller.attempts?.ended({ service: this.upstream, status: outcome, ms });
    // An upstream that failed is worth a line of its own (the access log may be off); a client that left is not.
    if (outcome === 'aborted' || (typeof outcome === 'number' && outcome < 500)) return;
    this.observers.logger.warn(
      { requestId: this.call.caller.requestId, upstream: this.upstream, method: this.method, ...(this.call.operation ? { operation: this.call.operation.operationId } : {}), outcome, ms },
      `the ${UPSTREAMS[this.upstream].title} service failed a call: ${outcome}`,
    );
  }
}

/**
 * Reports every attempt at a call to `upstream` once it ends, with the upstream's status or what kept
 * the answer from arriving whole (a timeout, a broken or oversized body), timed to the headers: counted
 * in the metrics, recorded for the request's access line, and logged with the request id when the
 * upstream failed it (no answer, a timeout, a 5xx).
 */
export function observeInterceptor(observers: UpstreamObservers, upstream: UpstreamName): Dispatcher.DispatcherComposeInterceptor {
  return (dispatch) => (options, handler) => {
    const observing = new ObservingHandler(handler, observers, upstream, options.method, callOf(options));
    try {
      return dispatch(options, observing);
    } catch (error) {
      observing.report('error', 0);
      throw error;
    }
  };
}

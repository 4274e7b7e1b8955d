import type { Dispatcher } from 'undici';
import { secondsSince, type GatewayMetrics } from '../../observability/metrics.js';
import type { UpstreamName } from '../../upstreams.js';
import { failureOf, outcomeOf } from '../failures.js';
import { PassThroughHandler, type Controller, type Headers } from './handler.js';

class MetricsHandler extends PassThroughHandler {
  private readonly started = process.hrtime.bigint();
  private status: number | undefined;
  private seconds = 0;

  constructor(
    next: Dispatcher.DispatchHandler,
    private readonly metrics: GatewayMetrics,
    private readonly upstream: UpstreamName,
    private readonly method: string,
  ) {
    super(next);
  }

  override onResponseStart(controller: Controller, statusCode: number, headers: Headers, statusMessage?: string): void {
    this.status = statusCode;
    this.seconds = secondsSince(this.started);
    super.onResponseStart(controller, statusCode, headers, statusMessage);
  }

  override onResponseEnd(controller: Controller, trailers: Headers): void {
    this.metrics.observeUpstream(this.upstream, this.method, this.status ?? 'error', this.seconds);
    super.onResponseEnd(controller, trailers);
  }

  override onResponseError(controller: Controller, error: Error): void {
    const outcome = outcomeOf(failureOf(error, this.status !== undefined), this.status);
    this.metrics.observeUpstream(this.upstream, this.method, outcome, this.status === undefined ? secondsSince(this.started) : this.seconds);
    super.onResponseError(controller, error);
  }
}

/**
 * Counts every attempt at a call to `upstream` once it ends, with the upstream's status, or what kept
 * the answer from arriving whole (a timeout, a broken or oversized body), and times it to the headers.
 */
export function metricsInterceptor(metrics: GatewayMetrics, upstream: UpstreamName): Dispatcher.DispatcherComposeInterceptor {
  return (dispatch) => (options, handler) => dispatch(options, new MetricsHandler(handler, metrics, upstream, options.method));
}

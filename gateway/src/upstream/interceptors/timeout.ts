import type { Dispatcher } from 'undici';
import { callOf } from '../call.js';
import { UpstreamDeadlineError } from '../failures.js';
import { PassThroughHandler, type Controller, type Headers } from './handler.js';

/** Aborts the call when the whole answer has not arrived within `ms` (undici's own timeouts are per phase). */
class DeadlineHandler extends PassThroughHandler {
  private controller: Controller | undefined;
  private expired = false;
  private readonly timer: NodeJS.Timeout;

  constructor(next: Dispatcher.DispatchHandler, private readonly ms: number) {
    super(next);
    this.timer = setTimeout(() => {
      this.expired = true;
      this.controller?.abort(new UpstreamDeadlineError(`no complete answer within ${this.ms} ms`));
    }, ms);
  }

  override onRequestStart(controller: Controller, context: unknown): void {
    this.controller = controller;
    if (this.expired) controller.abort(new UpstreamDeadlineError(`no complete answer within ${this.ms} ms`));
    else super.onRequestStart(controller, context);
  }

  override onResponseEnd(controller: Controller, trailers: Headers): void {
    clearTimeout(this.timer);
    super.onResponseEnd(controller, trailers);
  }

  override onResponseError(controller: Controller, error: Error): void {
    clearTimeout(this.timer);
    super.onResponseError(controller, error);
  }
}

/**
 * Timeouts. Every call: `timeoutMs` for the response headers and between body chunks (undici's
 * headersTimeout / bodyTimeout; the pool has the configured value, a call may set its own). A call
 * that reads its answer whole (`deadline`) must also have all of it within that time.
 */
export function timeoutInterceptor(configuredMs: number): Dispatcher.DispatcherComposeInterceptor {
  return (dispatch) => (options, handler) => {
    const { timeoutMs, deadline } = callOf(options);
    const timed = timeoutMs === undefined ? options : { ...options, headersTimeout: timeoutMs, bodyTimeout: timeoutMs };
    return dispatch(timed, deadline ? new DeadlineHandler(handler, timeoutMs ?? configuredMs) : handler);
  };
}

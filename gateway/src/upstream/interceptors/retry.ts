import type { Dispatcher } from 'undici';
import { failureOf } from '../failures.js';
import { PassThroughHandler, type Controller } from './handler.js';

/** Methods that mean the same done twice (RFC 9110 9.2.2); POST and PATCH never are retried. */
const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE']);

/** A body that can be sent again: none, or bytes in memory (a stream is gone once read). */
function replayable(body: Dispatcher.DispatchOptions['body']): boolean {
  return body === undefined || body === null || typeof body === 'string' || body instanceof Uint8Array;
}

class RetryOnceHandler extends PassThroughHandler {
  private written = false;
  private retried = false;

  constructor(
    next: Dispatcher.DispatchHandler,
    private readonly redispatch: () => void,
    private readonly jitterMs: () => number,
  ) {
    super(next);
  }

  override onRequestStart(controller: Controller, context: unknown): void {
    // undici starts a request on a connected socket right before writing it: from here on bytes may be out.
    this.written = true;
    super.onRequestStart(controller, context);
  }

  override onResponseError(controller: Controller, error: Error): void {
    if (!this.retried && !this.written && failureOf(error, false) === 'unreachable') {
      this.retried = true;
      setTimeout(this.redispatch, this.jitterMs());
      return;
    }
    super.onResponseError(controller, error);
  }
}

/**
 * One retry, after a short random pause, for an idempotent call with a replayable body whose
 * connection failed before any byte of it was written (refused, reset while connecting). Nothing is
 * retried once the request may have reached the upstream.
 */
export function retryInterceptor(jitterMs: () => number = () => 20 + Math.random() * 80): Dispatcher.DispatcherComposeInterceptor {
  return (dispatch) => (options, handler) => {
    if (!IDEMPOTENT.has(options.method) || !replayable(options.body)) return dispatch(options, handler);
    const retrying: RetryOnceHandler = new RetryOnceHandler(handler, () => dispatch(options, retrying), jitterMs);
    return dispatch(options, retrying);
  };
}

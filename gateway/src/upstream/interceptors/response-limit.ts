import type { Dispatcher } from 'undici';
import { callOf } from '../call.js';
import { ResponseTooLargeError } from '../failures.js';
import { PassThroughHandler, type Controller, type Headers } from './handler.js';

class ResponseLimitHandler extends PassThroughHandler {
  private received = 0;

  constructor(next: Dispatcher.DispatchHandler, private readonly limit: number) {
    super(next);
  }

  private tooLarge(): ResponseTooLargeError {
    return new ResponseTooLargeError(`the answer is over ${this.limit} bytes`);
  }

  override onResponseStart(controller: Controller, statusCode: number, headers: Headers, statusMessage?: string): void {
    // A declared length over the limit fails before a byte of the body is read.
    if (Number(headers['content-length'] ?? 0) > this.limit) controller.abort(this.tooLarge());
    else super.onResponseStart(controller, statusCode, headers, statusMessage);
  }

  override onResponseData(controller: Controller, chunk: Buffer): void {
    this.received += chunk.length;
    if (this.received > this.limit) controller.abort(this.tooLarge());
    else super.onResponseData(controller, chunk);
  }
}

/**
 * The response body cap for calls that read their answer whole (`responseLimitBytes`): past it the call
 * fails and the connection is dropped, so an upstream can never make the gateway hold more. Streamed
 * answers (REST) carry no cap: they pass through with backpressure and never sit in memory.
 */
export function responseLimitInterceptor(): Dispatcher.DispatcherComposeInterceptor {
  return (dispatch) => (options, handler) => {
    const limit = callOf(options).responseLimitBytes;
    return dispatch(options, limit === undefined ? handler : new ResponseLimitHandler(handler, limit));
  };
}

import type { Dispatcher } from 'undici';
import { InvalidStatusError } from '../failures.js';
import { PassThroughHandler, type Controller, type Headers } from './handler.js';

class ValidStatusHandler extends PassThroughHandler {
  override onResponseStart(controller: Controller, statusCode: number, headers: Headers, statusMessage?: string): void {
    if (statusCode < 100 || statusCode > 599) controller.abort(new InvalidStatusError(`the upstream answered status ${statusCode}`));
    else super.onResponseStart(controller, statusCode, headers, statusMessage);
  }
}

/** A status outside 100–599 is no HTTP answer (RFC 9110 15): the call fails, on both faces, as a 502. */
export function statusInterceptor(): Dispatcher.DispatcherComposeInterceptor {
  return (dispatch) => (options, handler) => dispatch(options, new ValidStatusHandler(handler));
}

import type { Dispatcher } from 'undici';
import { callOf } from '../call.js';
import { RedirectRefusedError } from '../failures.js';
import { PassThroughHandler, type Controller, type Headers } from './handler.js';

class RefuseRedirectHandler extends PassThroughHandler {
  override onResponseStart(controller: Controller, statusCode: number, headers: Headers, statusMessage?: string): void {
    if (statusCode >= 300 && statusCode < 400) controller.abort(new RedirectRefusedError(`the upstream answered ${statusCode}`));
    else super.onResponseStart(controller, statusCode, headers, statusMessage);
  }
}

/**
 * Redirects are never followed: the pools have no redirect handling, so a `Location` can never send the
 * gateway (and the caller's identity headers) to another host. A call that relays answers (REST) hands
 * a 3xx to its client untouched; a call that reads its answer itself (GraphQL) fails on one.
 */
export function redirectsInterceptor(): Dispatcher.DispatcherComposeInterceptor {
  return (dispatch) => (options, handler) => dispatch(options, callOf(options).redirects === 'refuse' ? new RefuseRedirectHandler(handler) : handler);
}

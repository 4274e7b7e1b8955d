import type { Dispatcher } from 'undici';
import { REQUEST_ID_HEADER } from '../../observability/request-id.js';
import { callOf, type Caller } from '../call.js';

/** The headers that say who is calling: an answer to a call carrying one is that caller's. */
export const IDENTITY_HEADERS = ['authorization', 'x-user-id', 'x-user-roles'] as const;

/**
 * The headers the gateway itself sets on every upstream call, REST and GraphQL alike, written over
 * `headers`: the caller's Authorization as sent, the identity from its verified token (`X-User-ID`,
 * `X-User-Roles`; none for an anonymous caller), the request id, where the request came from
 * (`X-Forwarded-*`), and a trusted client's trace context (when the gateway traces, the call's own span
 * replaces it).
 */
function setGatewayHeaders(caller: Caller, headers: Record<string, string | string[]>): Record<string, string | string[]> {
  headers[REQUEST_ID_HEADER] = caller.requestId;
  if (caller.forwarded) {
    headers['x-forwarded-for'] = caller.forwarded.forwardedFor;
    headers['x-forwarded-proto'] = caller.forwarded.proto;
    headers['x-forwarded-host'] = caller.forwarded.host;
  }
  if (caller.authorization !== undefined) headers.authorization = caller.authorization;
  if (caller.identity) {
    headers['x-user-id'] = caller.identity.sub;
    headers['x-user-roles'] = caller.identity.roles.join(',');
  }
  if (caller.trace) {
    headers.traceparent = caller.trace.traceparent;
    if (caller.trace.tracestate !== undefined) headers.tracestate = caller.trace.tracestate;
  }
  return headers;
}

/** Adds the gateway's own headers to (a copy of) the face's, replacing any of the same name. */
export function forwardingInterceptor(): Dispatcher.DispatcherComposeInterceptor {
  return (dispatch) => (options, handler) => {
    const call = callOf(options);
    return dispatch({ ...options, headers: setGatewayHeaders(call.caller, { ...call.headers }) }, handler);
  };
}

import { identityOf } from '../auth/authenticate.js';
import { hasRole } from '../auth/identity.js';
import type { Readable } from 'node:stream';
import { assertDeclaredLength, bodyStream, hasBody, readBody, type BodyPolicy } from '../request-body.js';
import { ConcurrencyGate } from '../ratelimit/concurrency.js';
import { GatewayError } from '../errors.js';
import type { Exchange } from '../pipeline/pipeline.js';
import { callerOf, type Face } from '../faces.js';
import type { UpstreamClient } from '../upstream/client.js';
import type { UpstreamCall } from '../upstream/call.js';
import { endToEndHeaders } from './headers.js';
import { forward } from './proxy.js';
import { allowHeader, takesMethod } from '../routing/routes.js';
import { ROLES, type UpstreamName } from '../../../shared/upstreams.js';

/** Bodies up to this size (declared) are read whole before an upstream connection is taken. */
const BUFFERED_BODY_BYTES = 64 * 1024;

/** The request body to send upstream: none, bytes read whole (small ones), or a stream (large uploads). */
async function bodyFor(exchange: Exchange, policy: BodyPolicy, uploads: ConcurrencyGate): Promise<{ body: Buffer | Readable; done?: () => void }> {
  const { req, res, state } = exchange;
  const declared = req.headers['content-length'] === undefined ? undefined : Number(req.headers['content-length']);
  // A trickling client never holds a pooled upstream connection for a small body.
  if (declared !== undefined && declared <= BUFFERED_BODY_BYTES) return { body: await readBody(req, res, policy) };
  const leave = uploads.enter(state.get('forwarded').clientKey);
  if (!leave) throw new GatewayError('RATE_LIMITED', 'Too many uploads in progress from this client', { headers: { 'retry-after': '1', connection: 'close' } });
  return { body: bodyStream(req, res, policy), done: leave };
}

/**
 * The REST passthrough face. The checks run in the contract's order: the path could be normalised
 * (else 400), authentication (401), authorization (403), routing (404), the method (405). Only then is
 * anything sent upstream, to the path that was checked.
 */
export function restFace(client: UpstreamClient, policy: BodyPolicy, uploadsPerClient: number): Face {
  // Uploads streamed to an upstream hold one of its pooled connections for as long as the client takes.
  const uploads = new ConcurrencyGate(uploadsPerClient);
  const withBody = async (exchange: Exchange, upstream: UpstreamName, call: (body: Buffer | Readable | null) => UpstreamCall) => {
    const { body, done } = await bodyFor(exchange, policy, uploads);
    try {
      await forward(client, upstream, exchange.res, call(body));
    } finally {
      done?.();
    }
  };
  return (exchange) => {
    const { req, res, state } = exchange;
    const route = state.get('route');
    if (route.face !== 'rest') throw new Error('the REST face was given a route of another face');
    const { target, rule, access, operation } = route;
    if (target instanceof GatewayError) throw target;
    if (access === undefined) throw new GatewayError('NOT_FOUND', 'No route matches this path');
    const identity = access === 'public' ? undefined : identityOf(state.get('auth'), access !== 'optional');
    if (access === 'admin' && !hasRole(identity, ROLES.admin)) throw new GatewayError('FORBIDDEN', 'Admin access required');
    if (!rule) throw new GatewayError('NOT_FOUND', 'No route matches this path');
    if (!takesMethod(rule, req.method ?? '')) {
      throw new GatewayError('METHOD_NOT_ALLOWED', `${req.method ?? ''} is not allowed here`, { headers: { allow: allowHeader(rule) } });
    }
    assertDeclaredLength(req.headers, policy.limitBytes);
    const call = (body: Buffer | Readable | null): UpstreamCall => {
      const made: { -readonly [K in keyof UpstreamCall]: UpstreamCall[K] } = {
        method: req.method ?? 'GET',
        path: target.path,
        query: target.query,
        headers: endToEndHeaders(req.headers),
        body,
        caller: callerOf(exchange, identity),
        redirects: 'relay',
      };
      if (operation) made.routedOperation = operation;
      return made;
    };
    // Most requests have no body: nothing to wait for before the call goes out.
    return hasBody(req.headers) ? withBody(exchange, rule.upstream, call) : forward(client, rule.upstream, res, call(null));
  };
}

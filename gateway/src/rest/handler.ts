import { identityOf } from '../auth/authenticate.js';
import { hasRole } from '../auth/identity.js';
import { assertDeclaredLength } from '../body-limit.js';
import { GatewayError } from '../errors.js';
import { callerOf } from '../upstream/call.js';
import type { Face } from '../routing.js';
import type { UpstreamClient } from '../upstream/client.js';
import { endToEndHeaders } from './headers.js';
import { forward } from './proxy.js';
import type { HttpMethod } from './routes.js';

/**
 * The REST passthrough face. The checks run in the contract's order: the path could be normalised
 * (else 400), authentication (401), authorization (403), routing (404), the method (405). Only then is
 * anything sent upstream, to the path that was checked.
 */
export function restFace(client: UpstreamClient, bodyLimitBytes: number): Face {
  return async (exchange) => {
    const { req, res, state } = exchange;
    const route = state.get('route');
    if (route.face !== 'rest') throw new Error('the REST face was given a route of another face');
    const { target, rule, access } = route;
    if (target instanceof GatewayError) throw target;
    if (access === undefined) throw new GatewayError('NOT_FOUND', 'No route matches this path');
    const identity = access === 'public' ? undefined : identityOf(state.get('auth'), access !== 'optional');
    if (access === 'admin' && !hasRole(identity, 'admin')) throw new GatewayError('FORBIDDEN', 'Admin access required');
    if (!rule) throw new GatewayError('NOT_FOUND', 'No route matches this path');
    if (!rule.methods.includes(req.method as HttpMethod)) {
      throw new GatewayError('METHOD_NOT_ALLOWED', `${req.method ?? ''} is not allowed here`, { headers: { allow: rule.methods.join(', ') } });
    }
    assertDeclaredLength(req.headers, bodyLimitBytes);

    const call = {
      method: req.method ?? 'GET',
      path: target.path,
      query: target.query,
      headers: endToEndHeaders(req.headers),
      caller: callerOf(exchange, identity),
      redirects: 'relay' as const,
    };
    await forward(client, rule.upstream, req, res, call, bodyLimitBytes);
  };
}

import type { IncomingMessage, ServerResponse } from 'node:http';
import { authenticationRequired } from '../auth/authenticate.js';
import { assertDeclaredLength } from '../body-limit.js';
import { hasRole, type Identity } from '../auth/identity.js';
import type { GatewayConfig } from '../config.js';
import { GatewayError, problemForStatus, sendProblem } from '../errors.js';
import type { GatewayMetrics } from '../observability/metrics.js';
import type { RequestContext } from '../request-context.js';
import { clientAddress, upstreamRequestHeaders } from './headers.js';
import { normaliseTarget } from './path.js';
import { UpstreamProxy } from './proxy.js';
import { accessFor, findRoute, type HttpMethod } from './routes.js';

function lastValue(value: string | string[] | undefined): string | undefined {
  const joined = Array.isArray(value) ? value.join(',') : value;
  const last = joined?.split(',').at(-1)?.trim();
  return last === '' ? undefined : last;
}

/**
 * The REST passthrough. Checks run in the contract's order: the path is normalised (400 if it cannot
 * be), then authentication (401), authorization (403), routing (404) and the method (405). Only then
 * is anything sent upstream, to the path that was checked.
 */
export class RestPassthrough {
  readonly proxy: UpstreamProxy;

  constructor(
    private readonly config: GatewayConfig,
    metrics: GatewayMetrics,
  ) {
    this.proxy = new UpstreamProxy({ upstreams: config.upstreams, metrics, timeoutMs: config.upstreamTimeoutMs, bodyLimitBytes: config.bodyLimitBytes });
  }

  async handle(req: IncomingMessage, res: ServerResponse, context: RequestContext): Promise<void> {
    const target = normaliseTarget(req.url ?? '');
    const route = findRoute(target.path);
    if (route) context.route = route.prefix;
    const access = accessFor(target.path, route);
    if (access === undefined) throw new GatewayError('NOT_FOUND', 'No route matches this path');

    let identity: Identity | undefined;
    if (access !== 'public') {
      identity = await context.authenticate();
      if (!identity && access !== 'optional') throw authenticationRequired();
    }
    if (access === 'admin' && !hasRole(identity, 'admin')) throw new GatewayError('FORBIDDEN', 'Admin access required');
    if (!route) throw new GatewayError('NOT_FOUND', 'No route matches this path');
    if (!route.methods.includes(req.method as HttpMethod)) {
      throw new GatewayError('METHOD_NOT_ALLOWED', `${req.method ?? ''} is not allowed here`, { allow: route.methods.join(', ') });
    }

    assertDeclaredLength(req.headers, this.config.bodyLimitBytes);

    const trusted = this.config.trustProxyHops > 0;
    const headers = upstreamRequestHeaders(req.headers, {
      requestId: context.requestId,
      client: clientAddress(req.socket.remoteAddress ?? '', req.headers['x-forwarded-for'], this.config.trustProxyHops),
      proto: (trusted ? lastValue(req.headers['x-forwarded-proto']) : undefined) ?? 'http',
      host: (trusted ? lastValue(req.headers['x-forwarded-host']) : undefined) ?? req.headers.host ?? '',
      ...(identity ? { identity } : {}),
    });

    const failure = await this.proxy.forward(req, res, { upstream: route.upstream, method: req.method ?? 'GET', path: target.path, query: target.query, headers });
    if (failure) {
      const extra: Record<string, string> = failure.status === 401 ? { 'www-authenticate': 'Bearer' } : {};
      const extensions = failure.errors ? { errors: failure.errors } : {};
      sendProblem(res, problemForStatus(failure.status, failure.detail, target.path, context.requestId, extensions), { ...failure.headers, ...extra });
    }
  }

  close(): Promise<void> {
    return this.proxy.close();
  }
}

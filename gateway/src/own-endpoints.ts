import type { ServerResponse } from 'node:http';
import { GatewayError } from './errors.js';
import { ANSWERED, rawPathOf, type Exchange, type GatewayPlugin } from './pipeline/pipeline.js';
import { ANY_ERROR_RESPONSE, type DescribedPath } from './openapi.js';

/**
 * A path the gateway answers itself (probes, metrics, docs): never authenticated, never rate limited;
 * `openapi` describes its GET as served.
 */
export interface OwnEndpoint extends DescribedPath {
  handle(exchange: Exchange): void | Promise<void>;
}

/** The OpenAPI path item of an own endpoint: a public GET, with these responses. */
export function ownGet(summary: string, responses: Readonly<Record<string, unknown>>): DescribedPath['openapi'] {
  return { get: { summary, tags: ['gateway'], security: [], responses: { ...responses, default: ANY_ERROR_RESPONSE } } };
}

const OWN_METHODS = new Set(['GET', 'HEAD']);

export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const payload = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload), 'cache-control': 'no-store' });
  res.end(payload);
}

/** The table of own endpoints, answered before routing: GET and HEAD only (405 otherwise). */
export function ownEndpointsPlugin(endpoints: readonly OwnEndpoint[]): GatewayPlugin {
  const byPath = new Map(endpoints.map((endpoint) => [endpoint.path, endpoint]));
  return {
    name: 'own-endpoints',
    phases: {
      ownEndpoints(exchange) {
        const path = rawPathOf(exchange.req);
        const endpoint = byPath.get(path);
        if (!endpoint) return undefined;
        exchange.state.set('route', { face: 'own', path });
        if (!OWN_METHODS.has(exchange.req.method ?? '')) {
          throw new GatewayError('METHOD_NOT_ALLOWED', `${exchange.req.method ?? ''} is not allowed here`, { headers: { allow: 'GET, HEAD' } });
        }
        return Promise.resolve(endpoint.handle(exchange)).then(() => ANSWERED);
      },
    },
  };
}

/** Liveness: the process is up and listening. */
export const healthEndpoint: OwnEndpoint = {
  path: '/health',
  openapi: ownGet('Liveness: the process is up and listening', {
    '200': { description: 'Up', content: { 'application/json': { schema: { type: 'object', additionalProperties: false, required: ['status'], properties: { status: { const: 'ok' } } } } } },
  }),
  handle: ({ res }) => sendJson(res, 200, { status: 'ok' }),
};

import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import { projectVersion } from '../../../shared/paths.js';
import { specPath, UPSTREAM_NAMES, UPSTREAMS, type UpstreamName } from '../../../shared/upstreams.js';
import { accessFor, findRoute, takesMethod, type Access } from './routes.js';

type Json = Record<string, unknown>;

const COMPONENT_KINDS = ['schemas', 'parameters', 'responses', 'requestBodies', 'headers', 'examples'] as const;
const METHODS = ['get', 'put', 'post', 'delete', 'patch'] as const;

/** Every `$ref` to a component of a spec, renamed with its upstream's prefix (the specs share names). */
function renameRefs(value: unknown, prefix: string): unknown {
  if (Array.isArray(value)) return value.map((item) => renameRefs(item, prefix));
  if (value === null || typeof value !== 'object') return value;
  return Object.fromEntries(
    Object.entries(value).map(([key, inner]) => [
      key,
      key === '$ref' && typeof inner === 'string' ? inner.replace(/^#\/components\/(\w+)\//, `#/components/$1/${prefix}_`) : renameRefs(inner, prefix),
    ]),
  );
}

const GATEWAY_ERRORS: Readonly<Record<string, string>> = {
  '401': 'No valid token (the gateway refused it before any service was called)',
  '403': 'The token lacks the role this route needs',
  '429': 'Too many requests from this caller: see Retry-After and the RateLimit-* headers',
  '503': 'The service is unavailable, or its circuit is open',
  '504': 'The service did not answer in time',
};

/** What the gateway adds to an operation of a route: who may call it, and its own problem answers. */
function asRouted(operation: Json, access: Access, upstream: UpstreamName): Json {
  const responses = { ...(operation.responses as Json | undefined) };
  const gatewayStatuses = ['429', '503', '504', ...(access === 'user' || access === 'admin' ? ['401'] : []), ...(access === 'admin' ? ['403'] : []), ...(access === 'optional' ? ['401'] : [])];
  for (const status of gatewayStatuses) responses[status] = { $ref: `#/components/responses/Gateway${status}` };
  const security = access === 'public' ? [] : access === 'optional' ? [{}, { bearerAuth: [] }] : [{ bearerAuth: [] }];
  const { servers: _servers, security: _security, ...rest } = operation;
  return {
    ...rest,
    tags: [UPSTREAMS[upstream].title],
    security,
    ...(access === 'admin' ? { 'x-admin': true, description: `${String(operation.description ?? operation.summary ?? '')}\n\nAdmin only: a token with role \`admin\`.`.trim() } : {}),
    responses,
  };
}

/**
 * The REST face described (OpenAPI 3.1): the six services' specs merged, keeping only what the gateway
 * routes, each operation with the access the gateway enforces (bearer security, admin marked), the
 * gateway's own problem+json answers (401, 403, 429, 503, 504), and the gateway as the only server.
 */
export function gatewayOpenApi(): Json {
  const paths: Record<string, Json> = {};
  const components: Record<string, Json> = Object.fromEntries(COMPONENT_KINDS.map((kind) => [kind, {}]));
  for (const upstream of UPSTREAM_NAMES) {
    const prefix = UPSTREAMS[upstream].meshSource;
    const spec = renameRefs(parse(readFileSync(specPath(upstream), 'utf8')), prefix) as { paths?: Record<string, Json>; components?: Record<string, Json | undefined> };
    for (const kind of COMPONENT_KINDS) {
      for (const [name, component] of Object.entries(spec.components?.[kind] ?? {})) (components[kind] as Json)[`${prefix}_${name}`] = component;
    }
    for (const [path, item] of Object.entries(spec.paths ?? {})) {
      const rule = findRoute(path.replace(/\{[^}]+\}/g, 'x'));
      const access = accessFor(path, rule);
      if (!rule || !access) continue;
      const routed: Json = {};
      for (const method of METHODS) {
        const operation = item[method] as Json | undefined;
        if (operation && takesMethod(rule, method.toUpperCase())) routed[method] = asRouted(operation, access, rule.upstream);
      }
      if (Object.keys(routed).length > 0) paths[path] = { ...(item.parameters ? { parameters: item.parameters } : {}), ...routed };
    }
  }
  const problem = { $ref: '#/components/schemas/GatewayProblem' };
  for (const [status, description] of Object.entries(GATEWAY_ERRORS)) {
    (components.responses as Json)[`Gateway${status}`] = { description, content: { 'application/problem+json': { schema: problem } } };
  }
  (components.schemas as Json).GatewayProblem = {
    type: 'object',
    description: 'RFC 9457 problem details, as the gateway answers every error',
    required: ['type', 'title', 'status', 'code', 'detail', 'instance', 'requestId'],
    properties: {
      type: { type: 'string', const: 'about:blank' },
      title: { type: 'string' },
      status: { type: 'integer' },
      code: { type: 'string', description: 'The error catalogue’s code: UNAUTHENTICATED, FORBIDDEN, RATE_LIMITED, UPSTREAM_UNAVAILABLE, …' },
      detail: { type: 'string' },
      instance: { type: 'string' },
      requestId: { type: 'string' },
      traceId: { type: 'string' },
    },
  };
  return {
    openapi: '3.1.0',
    info: {
      title: 'TV streaming gateway: REST',
      version: projectVersion(),
      description: 'The REST passthrough of the gateway: the six services’ routes, authenticated by the gateway (a Bearer JWT; /admin routes need role admin), errors as application/problem+json. GraphQL is at /graphql.',
    },
    servers: [{ url: '/', description: 'this gateway' }],
    tags: UPSTREAM_NAMES.map((name) => ({ name: UPSTREAMS[name].title })),
    paths,
    components: { ...components, securitySchemes: { bearerAuth: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' } } },
  };
}

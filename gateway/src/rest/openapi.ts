import { readFileSync } from 'node:fs';
import { STATUS_CODES } from 'node:http';
import { parse } from 'yaml';
import { ERROR_KINDS, GatewayError, PROBLEM_SCHEMA, type ErrorCode } from '../errors.js';
import { codeForStatus } from '../upstream/failures.js';
import { projectVersion } from '../../../shared/paths.js';
import { specPath, UPSTREAM_NAMES, UPSTREAMS, type UpstreamName } from '../../../shared/upstreams.js';
import { accessFor, findRoute, takesMethod, type Access } from '../routing/routes.js';
import { ANY_ERROR, ANY_ERROR_RESPONSE, COMPONENT_KINDS, problemResponse, problemSchemaName, ref, type DescribedPath, type Json } from '../openapi.js';

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

/** The codes a problem of `status` can carry: an upstream's status relayed (failures.ts), or the catalogue's kinds of that status. */
function codesOf(status: number): ErrorCode[] {
  const kinds = (Object.keys(ERROR_KINDS) as ErrorCode[]).filter((code) => ERROR_KINDS[code].status === status);
  return [...new Set([codeForStatus(status), ...kinds])];
}

/** PROBLEM_SCHEMA narrowed to one status: its codes and titles as the catalogue renders them. */
function statusProblemSchema(status: number): Json {
  const codes = codesOf(status);
  const titles = [...new Set(codes.map((code) => new GatewayError(code, '', { status }).title))];
  return {
    allOf: [ref('schemas', problemSchemaName())],
    properties: { status: { const: status }, code: codes.length === 1 ? { const: codes[0] } : { enum: codes }, title: titles.length === 1 ? { const: titles[0] } : { enum: titles } },
  };
}

const GATEWAY_ERRORS: Readonly<Record<string, string>> = {
  '401': 'No valid token (the gateway refused it before any service was called), or the service refused the caller',
  '403': 'The token lacks the role this route needs, or the service refused the caller',
  '429': 'Too many requests from this caller: see Retry-After and the RateLimit-* headers',
  '503': 'The service is unavailable, or its circuit is open',
  '504': 'The service did not answer in time',
};

/** Resolves a `$ref` to a component of the merged document (the services' refs, renamed). */
function resolve(value: unknown, components: Readonly<Record<string, Json>>): Json | undefined {
  if (value === null || typeof value !== 'object') return undefined;
  const target = (value as { $ref?: unknown }).$ref;
  if (typeof target !== 'string') return value as Json;
  const [, kind = '', name = ''] = /^#\/components\/(\w+)\/(.+)$/.exec(target) ?? [];
  return resolve(components[kind]?.[name], components);
}

/**
 * A service's error response as the gateway relays it (failures.ts: `upstreamHttpFailure`): a problem of
 * the same status, its description kept; a FastAPI validation list (`detail: [...]`) becomes `errors`,
 * each item as the service documents it.
 */
function relayedError(response: unknown, status: number, components: Readonly<Record<string, Json>>): Json {
  const resolved = resolve(response, components) ?? {};
  const schemas = Object.values((resolved.content ?? {}) as Record<string, { schema?: unknown }>).map((media) => resolve(media.schema, components));
  const list = schemas.map((schema) => resolve((schema?.properties as Json | undefined)?.detail, components)).find((detail) => detail?.type === 'array');
  return problemResponse(String(resolved.description ?? STATUS_CODES[status]), status, list ? { required: ['errors'], properties: { errors: list } } : undefined);
}

/**
 * What the gateway adds to an operation of a route: who may call it, its own problem answers, and every
 * error status the service documents as the problem the gateway relays in its place.
 */
function asRouted(operation: Json, access: Access, upstream: UpstreamName, components: Readonly<Record<string, Json>>): Json {
  const responses: Json = {};
  for (const [status, response] of Object.entries((operation.responses ?? {}) as Json)) {
    responses[status] = Number(status) >= 400 ? relayedError(response, Number(status), components) : response;
  }
  const gatewayStatuses = ['429', '503', '504', ...(access === 'public' ? [] : ['401']), ...(access === 'admin' ? ['403'] : [])];
  for (const status of gatewayStatuses) responses[status] = ref('responses', `Gateway${status}`);
  responses.default = ANY_ERROR_RESPONSE;
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

/** Every `$ref` target under `value`. */
function refsIn(value: unknown, found: Set<string>): Set<string> {
  if (Array.isArray(value)) for (const item of value) refsIn(item, found);
  else if (value !== null && typeof value === 'object') {
    for (const [key, inner] of Object.entries(value)) {
      if (key === '$ref' && typeof inner === 'string') found.add(inner);
      else refsIn(inner, found);
    }
  }
  return found;
}

/** Only the components the paths reach: the services' own error bodies, which the gateway never sends, are left out. */
function reachable(paths: Json, components: Record<string, Json>): Record<string, Json> {
  const kept = new Set<string>();
  const pending = [...refsIn(paths, new Set())];
  for (let target = pending.pop(); target !== undefined; target = pending.pop()) {
    if (kept.has(target)) continue;
    kept.add(target);
    pending.push(...refsIn(resolve({ $ref: target }, components), new Set()));
  }
  return Object.fromEntries(COMPONENT_KINDS.map((kind) => [kind, Object.fromEntries(Object.entries(components[kind] ?? {}).filter(([name]) => kept.has(`#/components/${kind}/${name}`)))]));
}

/**
 * The gateway described (OpenAPI 3.1): the six services' specs merged, keeping only what the gateway
 * routes, each operation with the access the gateway enforces (bearer security, admin marked) and every
 * status as the gateway answers it (its own problem+json answers, the services' errors as the problems
 * it relays); then the paths it answers itself (`own`: probes, docs, /graphql), as served; the gateway as
 * the only server.
 */
export function gatewayOpenApi(own: readonly DescribedPath[]): Json {
  const paths: Record<string, Json> = {};
  const components: Record<string, Json> = Object.fromEntries(COMPONENT_KINDS.map((kind) => [kind, {}]));
  const statuses = new Set<number>(Object.values(ERROR_KINDS).map((kind) => kind.status));
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
        if (!operation || !takesMethod(rule, method.toUpperCase())) continue;
        routed[method] = asRouted(operation, access, rule.upstream, components);
        for (const status of Object.keys((operation.responses ?? {}) as Json)) if (Number(status) >= 400) statuses.add(Number(status));
      }
      if (Object.keys(routed).length > 0) paths[path] = { ...(item.parameters ? { parameters: item.parameters } : {}), ...routed };
    }
  }
  for (const { path, openapi, schemas } of own) {
    paths[path] = openapi;
    Object.assign(components.schemas as Json, schemas);
  }
  for (const [status, description] of Object.entries(GATEWAY_ERRORS)) (components.responses as Json)[`Gateway${status}`] = problemResponse(description, Number(status));
  (components.responses as Json)[ANY_ERROR] = problemResponse('Any other error, as a problem: the code says which (a path that cannot be normalised, a body too large, a service’s own 4xx or 5xx, …)');
  (components.schemas as Json)[problemSchemaName()] = PROBLEM_SCHEMA;
  for (const status of statuses) (components.schemas as Json)[problemSchemaName(status)] = statusProblemSchema(status);
  return {
    openapi: '3.1.0',
    info: {
      title: 'TV streaming gateway: REST',
      version: projectVersion(),
      description: 'The REST passthrough of the gateway: the six services’ routes, authenticated by the gateway (a Bearer JWT; /admin routes need role admin), errors as application/problem+json; and what the gateway answers itself: /graphql (GraphQL over HTTP), its probes and these docs.',
    },
    servers: [{ url: '/', description: 'this gateway' }],
    tags: [...UPSTREAM_NAMES.map((name) => ({ name: UPSTREAMS[name].title })), { name: 'gateway', description: 'What the gateway answers itself' }],
    paths,
    components: { ...reachable(paths, components), securitySchemes: { bearerAuth: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' } } },
  };
}

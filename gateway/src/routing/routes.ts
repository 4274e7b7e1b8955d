import type { UpstreamName } from '../../../shared/upstreams.js';

export type HttpMethod = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

/**
 * Who may call a route: `public` anyone (a token is not even looked at); `optional` anyone, but a
 * token that is sent must be valid; `user` any valid token; `admin` a valid token with role `admin`.
 */
export type Access = 'public' | 'optional' | 'user' | 'admin';

export interface RouteRule {
  /** `/x` matches `/x`, `/x/` and `/x/...` but not `/xy`; with `exact`, only `/x` itself. */
  readonly prefix: string;
  readonly exact?: boolean;
  readonly methods: readonly HttpMethod[];
  readonly access: Access;
  readonly upstream: UpstreamName;
}

const READ_WRITE: readonly HttpMethod[] = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'];

/** The REST passthrough, row for row as the contract lists it. The upstream path is the client path. */
export const ROUTES: readonly RouteRule[] = [
  { prefix: '/auth', methods: ['POST'], access: 'public', upstream: 'auth' },
  { prefix: '/users', methods: READ_WRITE, access: 'user', upstream: 'users' },
  { prefix: '/ondemand', methods: READ_WRITE, access: 'user', upstream: 'ondemand' },
  { prefix: '/livetv', methods: READ_WRITE, access: 'user', upstream: 'livetv' },
  { prefix: '/subscriptions', methods: READ_WRITE, access: 'user', upstream: 'rights' },
  { prefix: '/play/ondemand', methods: ['GET'], access: 'user', upstream: 'ondemand' },
  { prefix: '/play/live', methods: ['GET'], access: 'user', upstream: 'livetv' },
  { prefix: '/search/global', exact: true, methods: ['GET'], access: 'optional', upstream: 'search' },
  { prefix: '/admin/users', methods: READ_WRITE, access: 'admin', upstream: 'users' },
  { prefix: '/admin/ondemand', methods: READ_WRITE, access: 'admin', upstream: 'ondemand' },
  { prefix: '/admin/livetv', methods: READ_WRITE, access: 'admin', upstream: 'livetv' },
  { prefix: '/admin/rights', methods: READ_WRITE, access: 'admin', upstream: 'rights' },
];

/** Every path under `/admin` needs an admin before the gateway even says whether the route exists. */
export const ADMIN_AREA = '/admin';

export function matchesPrefix(path: string, prefix: string, exact = false): boolean {
  if (path === prefix) return true;
  return !exact && path.startsWith(`${prefix}/`);
}

/** Whether a route takes a method: HEAD wherever GET is taken (RFC 9110 9.3.2). */
export function takesMethod(route: RouteRule, method: string): boolean {
  return route.methods.includes(method as HttpMethod) || (method === 'HEAD' && route.methods.includes('GET'));
}

/** The `Allow` header of a route. */
export function allowHeader(route: RouteRule): string {
  return [...route.methods, ...(route.methods.includes('GET') ? ['HEAD'] : [])].join(', ');
}

export function findRoute(path: string): RouteRule | undefined {
  return ROUTES.find((route) => matchesPrefix(path, route.prefix, route.exact));
}

/** The access a path needs before routing: the route's own, or `admin` anywhere under /admin. */
export function accessFor(path: string, route: RouteRule | undefined): Access | undefined {
  if (route) return route.access;
  return matchesPrefix(path, ADMIN_AREA) ? 'admin' : undefined;
}

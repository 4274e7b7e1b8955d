import type { IncomingMessage } from 'node:http';
import { GatewayError } from '../errors.js';
import { rawPathOf, type GatewayPlugin } from '../pipeline/pipeline.js';
import { normaliseTarget, type RequestTarget } from './target.js';
import { accessFor, findRoute, type Access, type RouteRule } from './routes.js';
import { operationReached, type UpstreamOperation } from './operations.js';

declare module '../pipeline/state.js' {
  interface RequestVariables {
    /** ownEndpoints or route: which face answers, and for REST the checked target and its rule. */
    readonly route: Route;
  }
}

export const GRAPHQL_PATH = '/graphql';

/** Which face answers a request: one of the gateway's own endpoints, GraphQL, or the REST passthrough. */
export type Route =
  | { readonly face: 'own'; readonly path: string }
  | { readonly face: 'graphql' }
  | {
      readonly face: 'rest';
      /** The normalised target, or the 400 for one that cannot be normalised safely. */
      readonly target: RequestTarget | GatewayError;
      /** The route-table row the path matched. */
      readonly rule?: RouteRule;
      /** Who may call: the row's access, `admin` anywhere under /admin, undefined elsewhere (404). */
      readonly access?: Access;
      /**
       * The upstream operation the method and normalised path reach (what guards key on); undefined
       * when they reach none, and the upstream answers 404 or 405 itself.
       */
      readonly operation?: UpstreamOperation;
    };

/** Who may call the face a route leads to; undefined when nobody is authenticated for it. */
export function accessOf(route: Route): Access | undefined {
  if (route.face === 'graphql') return 'optional';
  if (route.face === 'rest') return route.access;
  return undefined;
}

type RestRoute = Extract<Route, { readonly face: 'rest' }>;

/**
 * How many method and path pairs the routing of recent requests is kept for: most requests ask a path
 * asked just before (an app's clients ask the same pages), whose normalisation and route-table search
 * need not be made again. Bounded (a client may send any number of paths): emptied when full.
 */
const REMEMBERED_PATHS = 1024;

function restRoute(req: IncomingMessage, remembered: Map<string, RestRoute>): RestRoute {
  const url = req.url ?? '';
  const queryStart = url.indexOf('?');
  // What the routing depends on: the method and the path; the query is carried along as it came.
  const key = `${req.method ?? ''} ${queryStart === -1 ? url : url.slice(0, queryStart)}`;
  let route = remembered.get(key);
  if (!route) {
    let target: RequestTarget;
    try {
      target = normaliseTarget(url);
    } catch (error) {
      if (error instanceof GatewayError) return { face: 'rest', target: error };
      throw error;
    }
    const rule = findRoute(target.path);
    const access = accessFor(target.path, rule);
    const operation = rule && operationReached(rule.upstream, req.method ?? '', target.path);
    route = { face: 'rest', target: { path: target.path, query: '' }, ...(rule ? { rule } : {}), ...(access ? { access } : {}), ...(operation ? { operation } : {}) };
    if (remembered.size >= REMEMBERED_PATHS) remembered.clear();
    remembered.set(key, route);
  }
  return queryStart === -1 ? route : { ...route, target: { path: (route.target as RequestTarget).path, query: url.slice(queryStart + 1) } };
}

/**
 * Decides the face and, for REST, normalises the target and finds its route-table row. It refuses
 * nothing itself: refusals (400, 401, 403, 404, 405) are the face's, after rate limiting, in the
 * contract's order. Without a GraphQL face, /graphql is a path like any other.
 */
export function routingPlugin(options: { readonly graphql: boolean }): GatewayPlugin {
  const remembered = new Map<string, RestRoute>();
  return {
    name: 'routing',
    phases: {
      route({ req, state }) {
        state.set('route', options.graphql && rawPathOf(req) === GRAPHQL_PATH ? { face: 'graphql' } : restRoute(req, remembered));
        return undefined;
      },
    },
  };
}

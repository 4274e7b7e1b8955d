import type { Identity } from './auth/identity.js';

/** What the gateway knows about a request while it handles it. */
export interface RequestContext {
  readonly requestId: string;
  /**
   * The caller from the Authorization header, verified at most once per request (the rate limiter and
   * the route both ask): undefined without a header; rejects with the 401 for a bad one.
   */
  readonly authenticate: () => Promise<Identity | undefined>;
  /** The route it matched, for metrics: a route-table prefix, an own path such as /graphql, or "unmatched". */
  route: string;
}

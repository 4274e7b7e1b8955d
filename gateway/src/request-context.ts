/** What the gateway knows about a request while it handles it. */
export interface RequestContext {
  readonly requestId: string;
  /** The route it matched, for metrics: a route-table prefix, an own path such as /graphql, or "unmatched". */
  route: string;
}

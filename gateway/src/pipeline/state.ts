import type { AuthOutcome } from '../auth/authenticate.js';
import type { Forwarded } from '../forwarded.js';
import type { RequestTrace } from '../observability/request-trace.js';
import type { Route } from '../routing.js';
import type { AttemptLog } from '../upstream/call.js';

/** Operation names are the client's: logs, metrics and traces keep at most this much of one. */
export const MAX_OPERATION_NAME_LENGTH = 64;

/** A GraphQL operation as the access log, the metrics and the trace name it. */
export interface GraphQLOperation {
  /** The operation's name ("" for an unnamed one), at most MAX_OPERATION_NAME_LENGTH characters. */
  readonly name: string;
  readonly type: 'query' | 'mutation' | 'subscription';
}

/** What the pipeline learns about a request, each entry set once, by the phase that owns it. */
export interface RequestVariables {
  /** onRequest (request id): the client's sane X-Request-ID, or a new one. */
  readonly requestId: string;
  /** onRequest (forwarded): the client's address, scheme and host through trusted proxies. */
  readonly forwarded: Forwarded;
  /** ownEndpoints or route: which face answers, and for REST the checked target and its rule. */
  readonly route: Route;
  /** authenticate: the caller, as far as the route needs to know. */
  readonly auth: AuthOutcome;
  /** onRequest (trace): the trace the request belongs to, when it has one. */
  readonly trace: RequestTrace;
  /** onRequest (access log): every upstream call made for the request. */
  readonly upstreamAttempts: AttemptLog;
  /** onRequest (access log): the connection's bytes written before this request (its response's are the rest). */
  readonly bytesWrittenBefore: number;
  /** face (GraphQL): the operation, once it is known. */
  readonly graphqlOperation: GraphQLOperation;
}

type Key = keyof RequestVariables;

/**
 * Per-request state, typed: an entry is set once (setting it again is a bug: callees never write back)
 * and read only after its phase ran (reading it earlier is a bug too).
 */
export class RequestState {
  private readonly values: { -readonly [K in Key]?: RequestVariables[K] } = {};

  set<K extends Key>(key: K, value: RequestVariables[K]): void {
    if (this.values[key] !== undefined) throw new Error(`request state "${key}" is already set`);
    this.values[key] = value;
  }

  get<K extends Key>(key: K): RequestVariables[K] {
    const value = this.values[key];
    if (value === undefined) throw new Error(`request state "${key}" is not set yet`);
    return value as RequestVariables[K];
  }

  /** The entry if its phase has run (error rendering and metrics look at a request that may have stopped early). */
  peek<K extends Key>(key: K): RequestVariables[K] | undefined {
    return this.values[key];
  }
}

import type { Span } from '@opentelemetry/api';
import type { Identity } from '../gateway/src/auth/identity.js';
import type { ResponseCachePolicy } from '../gateway/src/graphql/cache-policy.js';
import type { GraphQLOperation } from '../gateway/src/pipeline/state.js';
import type { Caller } from '../gateway/src/upstream/call.js';

/**
 * One generated operation of a Mesh source, called in-process ("in-context SDK"). It is always given its
 * own selection set and never the client's `info`: delegating with the client's operation would carry
 * the client's variables into the source's request.
 */
export type SourceOperation = (options: { args?: Record<string, unknown>; context: unknown; selectionSet: string }) => Promise<unknown>;

/** Mesh's in-context SDK, merged into every request's context: per source, per root type, per operation. */
export type MeshSdk = Readonly<Record<string, Readonly<Record<string, Readonly<Record<string, SourceOperation>>>> | undefined>>;

/** How many upstream calls one GraphQL request may still make (GRAPHQL_MAX_UPSTREAM_CALLS). */
export interface CallBudget {
  readonly limit: number;
  used: number;
}

/**
 * A traced request's spans, passed explicitly: the request's server span, the execute span once
 * execution starts, and a span per DataLoader batch (`work` gets it, to parent its upstream call).
 */
export interface GraphQLTracing {
  readonly server: Span;
  execution: Span | undefined;
  batch<T>(name: string, keys: number, work: (span: Span) => Promise<T>): Promise<T>;
}

/** What the gateway puts in every GraphQL request's context, beside Mesh's SDK. */
export interface GatewayContext {
  readonly requestId: string;
  /** The request's trace id, when it has one (errors carry it). */
  readonly traceId?: string;
  /** Tells the pipeline which operation the request is (access log, server span). */
  readonly reportOperation: (operation: GraphQLOperation) => void;
  /** Present when tracing is on. */
  readonly tracing?: GraphQLTracing;
  /** The span an upstream call made with this context is a child of (a batch's), when not the execute span. */
  readonly traceParent?: Span;
  /** The verified caller: the permissions read it. */
  readonly user?: Identity;
  /** What every upstream call made for this request tells the upstream (Mesh hands the context to its fetch). */
  readonly caller: Caller;
  readonly budget: CallBudget;
  /** What the upstream answers allow the response's Cache-Control to say. */
  readonly cachePolicy: ResponseCachePolicy;
  /** Aborted when the client goes away: no upstream call starts after that, those in flight stop. */
  readonly signal: AbortSignal;
}

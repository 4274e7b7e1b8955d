import type { Span } from '@opentelemetry/api';
import type { Identity } from '../../auth/identity.js';
import type { ResponseCachePolicy } from '../cache-policy.js';
import type { Caller } from '../../upstream/call.js';
import type { GraphQLField, GraphQLObjectType } from 'graphql';
import type { LiveFeed } from './live.js';

/** Operation names are the client's: logs, metrics and traces keep at most this much of one. */
export const MAX_OPERATION_NAME_LENGTH = 64;

/** A GraphQL operation as the access log, the metrics and the trace name it. */
export interface GraphQLOperation {
  /** The operation's name ("" for an unnamed one), at most MAX_OPERATION_NAME_LENGTH characters. */
  readonly name: string;
  readonly type: 'query' | 'mutation' | 'subscription';
}

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

/**
 * One upstream operation as Mesh generated it from its spec: the source schema's root field, whose
 * resolver builds the request from the spec (path, query string, body) and makes it with the fetch
 * the gateway gave Mesh (the upstream client).
 */
export interface SourceOperation {
  readonly operationId: string;
  readonly field: GraphQLField<unknown, GatewayContext>;
  readonly parentType: GraphQLObjectType;
  readonly pathParams: readonly string[];
}

export type SourceOperations = ReadonlyMap<string, SourceOperation>;

/** What the gateway puts in every GraphQL request's context. */
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
  /** The upstream operations Mesh generated from schemas/, by operationId: the resolvers call these. */
  readonly sources: SourceOperations;
  /** What every upstream call made for this request tells the upstream (Mesh hands the context to its fetch). */
  readonly caller: Caller;
  readonly budget: CallBudget;
  /** What the upstream answers allow the response's Cache-Control to say. */
  readonly cachePolicy: ResponseCachePolicy;
  /** Aborted when the client goes away: no upstream call starts after that, those in flight stop. */
  readonly signal: AbortSignal;
  /** What subscriptions emit (present for a subscription's request). */
  readonly live?: LiveFeed;
}

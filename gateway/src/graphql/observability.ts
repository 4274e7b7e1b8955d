import type { ApolloServerPlugin, GraphQLRequestListener } from '@apollo/server';
import { context as otelContext, trace, type Context } from '@opentelemetry/api';
import type { IMiddleware } from 'graphql-middleware';
import type { GatewayContext, GraphQLTracing } from '../../../mesh/context.js';
import type { GatewayMetrics, GraphQLOutcome } from '../observability/metrics.js';
import { endSpan, inSpan, type Tracing } from '../observability/tracing.js';

export interface GraphQLObservers {
  readonly metrics: GatewayMetrics;
  /** The SDK, when tracing is on. */
  readonly tracing?: Tracing;
}

function outcomeOf(errors: number, hasData: boolean): GraphQLOutcome {
  if (errors === 0) return 'success';
  return hasData ? 'partial' : 'error';
}

/** A span for one step of a request (parse, validate), ended by the listener Apollo calls when it is done. */
function stepSpan(tracing: Tracing, name: string, parent: Context): (error?: unknown) => Promise<void> {
  const span = tracing.tracer.startSpan(name, {}, parent);
  return async (error?: unknown) => endSpan(span, error === undefined || (Array.isArray(error) && error.length === 0) ? undefined : 'invalid');
}

/**
 * What every GraphQL request tells about itself: its operation (to the access log and the server span,
 * through the context), its outcome and error codes (metrics), the request and trace ids on every
 * error, and, when tracing, spans for parse, validate and execute under the request's server span.
 */
export function observabilityPlugin({ metrics, tracing }: GraphQLObservers): ApolloServerPlugin<GatewayContext> {
  return {
    async requestDidStart({ contextValue }): Promise<GraphQLRequestListener<GatewayContext>> {
      const parent = otelContext.active();
      const traced = tracing !== undefined && trace.getSpan(parent) !== undefined;
      let operation: { name: string; type: 'query' | 'mutation' | 'subscription' } | undefined;
      return {
        ...(traced
          ? {
              parsingDidStart: async () => stepSpan(tracing, 'graphql.parse', parent),
              validationDidStart: async () => stepSpan(tracing, 'graphql.validate', parent),
              executionDidStart: async () => {
                const span = tracing.tracer.startSpan('graphql.execute', { attributes: operation ? { 'graphql.operation.name': operation.name, 'graphql.operation.type': operation.type } : {} }, parent);
                if (contextValue.tracing) contextValue.tracing.execution = trace.setSpan(parent, span);
                return { executionDidEnd: async (error?: Error) => endSpan(span, error ? error.name : undefined) };
              },
            }
          : {}),
        async didResolveOperation(request) {
          if (!request.operation) return;
          operation = { name: request.operation.name?.value ?? '', type: request.operation.operation };
          contextValue.reportOperation(operation);
        },
        async willSendResponse({ response }) {
          if (response.body.kind !== 'single') return;
          const { errors, data } = response.body.singleResult;
          const codes: string[] = [];
          for (const error of errors ?? []) {
            const extensions = error.extensions as Record<string, unknown>;
            extensions.requestId = contextValue.requestId;
            if (contextValue.traceId) extensions.traceId = contextValue.traceId;
            codes.push(typeof extensions.code === 'string' ? extensions.code : 'INTERNAL_SERVER_ERROR');
          }
          metrics.observeGraphQLOperation(operation?.name, operation?.type ?? 'unknown', outcomeOf(codes.length, data !== undefined && data !== null), codes);
        },
      };
    },
  };
}

/** A request's tracing helpers, when tracing is on: batches get a span each, under the execute span. */
export function graphqlTracing(tracing: Tracing): GraphQLTracing {
  const helpers: GraphQLTracing = {
    execution: undefined,
    batch: (name, keys, work) => inSpan(tracing, `graphql.batch ${name}`, { 'graphql.batch.size': keys }, work, helpers.execution ?? otelContext.active()),
  };
  return helpers;
}

/**
 * Root fields resolve in the execute span's context (Apollo's hooks cannot wrap execution), so the
 * upstream calls a root field makes are the execute span's children.
 */
export const rootFieldsInExecutionSpan: IMiddleware = (() => {
  const inExecution = (resolve: (...args: unknown[]) => unknown, root: unknown, args: unknown, context: GatewayContext, info: unknown) => {
    const execution = context.tracing?.execution;
    return execution ? otelContext.with(execution, () => resolve(root, args, context, info)) : resolve(root, args, context, info);
  };
  return { Query: inExecution, Mutation: inExecution } as unknown as IMiddleware;
})();

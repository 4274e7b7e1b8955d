import type { ApolloServerPlugin, GraphQLRequestListener } from '@apollo/server';
import { SpanKind, type Span } from '@opentelemetry/api';
import { Kind, parse } from 'graphql';
import type { TrustedDocuments } from '../trusted-documents.js';
import { MAX_OPERATION_NAME_LENGTH, type GatewayContext, type GraphQLOperation, type GraphQLTracing } from './contract/context.js';
import type { GatewayMetrics, GraphQLOutcome } from '../observability/metrics.js';
import { endSpan, inChildSpan } from '../observability/tracing.js';
import type { Tracing } from '../../../shared/tracing.js';

declare module '../pipeline/state.js' {
  interface RequestVariables {
    /** face (GraphQL): the operation, once it is known. */
    readonly graphqlOperation: GraphQLOperation;
  }
}

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
function stepSpan(tracing: Tracing, name: string, parent: Span): (error?: unknown) => Promise<void> {
  const span = tracing.startChild(parent, name, SpanKind.INTERNAL);
  return async (error?: unknown) => endSpan(span, error === undefined || (Array.isArray(error) && error.length === 0) ? undefined : 'invalid');
}

/**
 * What every GraphQL request tells about itself: its operation (to the access log and the server span,
 * through the context), its outcome and error codes (metrics), the request and trace ids on every
 * error, its Cache-Control (from its upstream answers), and, when tracing, spans for parse, validate and
 * execute under the request's server span.
 */
export function observabilityPlugin({ metrics, tracing }: GraphQLObservers): ApolloServerPlugin<GatewayContext> {
  return {
    async requestDidStart({ contextValue }): Promise<GraphQLRequestListener<GatewayContext>> {
      const traced = tracing && contextValue.tracing;
      let operation: { name: string; type: 'query' | 'mutation' | 'subscription' } | undefined;
      return {
        ...(traced
          ? {
              parsingDidStart: async () => stepSpan(tracing, 'graphql.parse', traced.server),
              validationDidStart: async () => stepSpan(tracing, 'graphql.validate', traced.server),
              executionDidStart: async () => {
                const span = tracing.startChild(traced.server, 'graphql.execute', SpanKind.INTERNAL, operation ? { 'graphql.operation.name': operation.name, 'graphql.operation.type': operation.type } : {});
                traced.execution = span;
                return { executionDidEnd: async (error?: Error) => endSpan(span, error ? error.name : undefined) };
              },
            }
          : {}),
        async didResolveOperation(request) {
          if (!request.operation) return;
          operation = { name: (request.operation.name?.value ?? '').slice(0, MAX_OPERATION_NAME_LENGTH), type: request.operation.operation };
          contextValue.reportOperation(operation);
        },
        async willSendResponse({ response }) {
          if (response.body.kind !== 'single') return;
          const { errors, data } = response.body.singleResult;
          const credentials = contextValue.user !== undefined || contextValue.caller.authorization !== undefined;
          const cacheControl = contextValue.cachePolicy.header({ identity: contextValue.user, credentials, failed: (errors?.length ?? 0) > 0, now: Date.now() });
          response.http.headers.set('cache-control', cacheControl);
          // A private cache (a browser's) must not answer one token with what another was given.
          if (cacheControl.startsWith('private')) response.http.headers.set('vary', [response.http.headers.get('vary'), 'authorization'].filter(Boolean).join(', '));
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

/** A traced request's GraphQL spans: under its server span, a span per DataLoader batch under the execute span. */
export function graphqlTracing(tracing: Tracing, server: Span): GraphQLTracing {
  const spans: GraphQLTracing = {
    server,
    execution: undefined,
    batch: (name, keys, work) => inChildSpan(tracing, spans.execution ?? server, `graphql.batch ${name}`, { 'graphql.batch.size': keys }, work),
  };
  return spans;
}

/** The names of the operations the manifests register (for their metric series); a document that does not parse names none. */
export function operationNamesOf(trusted: TrustedDocuments | undefined): Set<string> {
  const names = new Set<string>();
  for (const text of new Set(trusted?.documents.values())) {
    try {
      for (const definition of parse(text).definitions) {
        if (definition.kind === Kind.OPERATION_DEFINITION && definition.name) names.add(definition.name.value);
      }
    } catch {
      // Apollo refuses it in its own words when it is asked for.
    }
  }
  return names;
}

import type { IncomingHttpHeaders } from 'node:http';
import type { Span } from '@opentelemetry/api';
import { rawPathOf, responseStatus, type GatewayPlugin } from '../pipeline/pipeline.js';
import { routeLabel } from './metrics.js';
import { endSpan, parseTraceContext, type IncomingTraceContext } from './tracing.js';
import type { Tracing } from '../../../shared/tracing.js';

declare module '../pipeline/state.js' {
  interface RequestVariables {
    /** onRequest (trace): the trace the request belongs to, when it has one. */
    readonly trace: RequestTrace;
  }
}

/** The trace a request belongs to. */
export interface RequestTrace {
  readonly traceId: string;
  /** The client's context, to pass on as it came (when the gateway does not trace itself). */
  readonly forward?: IncomingTraceContext;
  /** The gateway's server span (when it traces). */
  readonly span?: Span;
}

export interface RequestTraceOptions {
  /** The SDK, when tracing is on. */
  readonly tracing: Tracing | undefined;
  /** TRACE_TRUST_CLIENT: a client's `traceparent` is continued and passed on. */
  readonly trustClientContext: boolean;
  /** Paths never traced (probes and metrics scrapes: they would bury the traces that matter). */
  readonly untraced: ReadonlySet<string>;
}

/**
 * W3C trace context for every request. Without tracing, a trusted client's `traceparent` is passed on
 * to the upstreams as it came and its trace id is the request's. With tracing, the request has a server
 * span (the child of a trusted client's span, or a new trace linking to an untrusted one), the parent
 * of every span the request makes (passed explicitly: AsyncLocalStorage would slow every promise); the
 * upstream client sends each call's own span on.
 */
export function requestTracePlugin({ tracing, trustClientContext, untraced }: RequestTraceOptions): GatewayPlugin {
  const incomingOf = (headers: IncomingHttpHeaders) => (headers.traceparent === undefined ? undefined : parseTraceContext(headers.traceparent, headers.tracestate));

  if (!tracing) {
    if (!trustClientContext) return { name: 'trace' };
    return {
      name: 'trace',
      phases: {
        onRequest({ req, state }) {
          const incoming = incomingOf(req.headers);
          if (incoming) state.set('trace', { traceId: incoming.traceId, forward: incoming });
          return undefined;
        },
      },
    };
  }

  return {
    name: 'trace',
    phases: {
      onRequest({ req, state }) {
        const incoming = incomingOf(req.headers);
        const path = rawPathOf(req);
        if (untraced.has(path)) {
          if (incoming && trustClientContext) state.set('trace', { traceId: incoming.traceId, forward: incoming });
          return undefined;
        }
        const method = req.method ?? 'GET';
        const span = tracing.startServerSpan(
          method,
          {
            'http.request.method': method,
            'url.path': path.slice(0, 256),
            'network.protocol.version': req.httpVersion,
            ...(req.headers['user-agent'] ? { 'user_agent.original': req.headers['user-agent'].slice(0, 256) } : {}),
          },
          incoming,
        );
        state.set('trace', { traceId: span.spanContext().traceId, span });
        return undefined;
      },
    },
    onResponse({ req, res, state }) {
      const span = state.peek('trace')?.span;
      if (!span) return;
      if (!span.isRecording()) {
        span.end();
        return;
      }
      const route = routeLabel(state.peek('route'));
      const status = responseStatus(res);
      const forwarded = state.peek('forwarded');
      const auth = state.peek('auth');
      const operation = state.peek('graphqlOperation');
      span.updateName(`${req.method ?? 'GET'} ${route}`);
      span.setAttributes({
        'http.route': route,
        'http.response.status_code': status,
        'gateway.request_id': state.peek('requestId') ?? '',
        ...(forwarded ? { 'client.address': forwarded.clientIp, 'url.scheme': forwarded.proto } : {}),
        ...(auth?.kind === 'verified' ? { 'user.id': auth.identity.sub } : {}),
        ...(operation ? { 'graphql.operation.name': operation.name, 'graphql.operation.type': operation.type } : {}),
      });
      endSpan(span, status >= 500 ? String(status) : status === 499 ? 'client_closed' : undefined);
    },
  };
}

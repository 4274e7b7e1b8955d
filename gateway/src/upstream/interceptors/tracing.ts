import { SpanKind, type Span } from '@opentelemetry/api';
import type { Dispatcher } from 'undici';
import { endSpan } from '../../observability/tracing.js';
import type { Tracing } from '../../../../shared/tracing.js';
import type { UpstreamName } from '../../../../shared/upstreams.js';
import { callOf } from '../call.js';
import { failureOf } from '../failures.js';
import { PassThroughHandler, type Controller, type Headers } from './handler.js';

class SpanHandler extends PassThroughHandler {
  private status: number | undefined;

  constructor(
    next: Dispatcher.DispatchHandler,
    private readonly span: Span,
  ) {
    super(next);
  }

  override onResponseStart(controller: Controller, statusCode: number, headers: Headers, statusMessage?: string): void {
    this.status = statusCode;
    this.span.setAttribute('http.response.status_code', statusCode);
    super.onResponseStart(controller, statusCode, headers, statusMessage);
  }

  override onResponseEnd(controller: Controller, trailers: Headers): void {
    endSpan(this.span, this.status !== undefined && this.status >= 500 ? String(this.status) : undefined);
    super.onResponseEnd(controller, trailers);
  }

  override onResponseError(controller: Controller, error: Error): void {
    endSpan(this.span, failureOf(error, this.status !== undefined));
    super.onResponseError(controller, error);
  }
}

/**
 * A client span for every attempt at a call to `upstream` made within a sampled request (the call's
 * caller names the parent span), its context sent on as `traceparent` / `tracestate`, so the service
 * continues the trace (an unsampled request's context is sent on as it is). Named after the operation's path template (GraphQL) or the method alone (REST:
 * a raw path would make every span name unique); the path itself is an attribute.
 */
export function tracingInterceptor(tracing: Tracing, upstream: UpstreamName, origin: URL): Dispatcher.DispatcherComposeInterceptor {
  const port = Number(origin.port || (origin.protocol === 'https:' ? 443 : 80));
  return (dispatch) => (options, handler) => {
    const { operation, caller } = callOf(options);
    if (!caller.traceParent) return dispatch(options, handler);
    const headers: Record<string, string> = {};
    if (!caller.traceParent.isRecording()) {
      // Not sampled: the upstream continues the trace unsampled; a span nobody records is not worth making.
      tracing.inject(caller.traceParent, headers);
      return dispatch({ ...options, headers: { ...(options.headers as Record<string, string>), ...headers } }, handler);
    }
    const path = options.path.split('?', 1)[0] ?? '';
    const span = tracing.startChild(caller.traceParent, operation ? `${options.method} ${operation.template}` : options.method, SpanKind.CLIENT, {
      'http.request.method': options.method,
      'server.address': origin.hostname,
      'server.port': port,
      'url.full': `${origin.origin}${path.slice(0, 256)}`,
      'peer.service': upstream,
      ...(operation ? { 'url.template': operation.template } : {}),
    });
    tracing.inject(span, headers);
    return dispatch({ ...options, headers: { ...(options.headers as Record<string, string>), ...headers } }, new SpanHandler(handler, span));
  };
}

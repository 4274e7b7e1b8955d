import type { IncomingMessage, ServerResponse } from 'node:http';
import { context, propagation, ROOT_CONTEXT, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';

/**
 * The reference services continue the gateway's trace through OpenTelemetry's global API: spans are
 * real once services/main.ts started the SDK (OTEL_* configured), and cost next to nothing otherwise.
 */
const tracer = trace.getTracer('reference-services');

/** Runs a request in a server span, the child of the caller's `traceparent` (health probes are not traced). */
export function inServerSpan(req: IncomingMessage, res: ServerResponse, handle: () => Promise<void>): Promise<void> {
  if (req.url === '/health') return handle();
  const parent = propagation.extract(ROOT_CONTEXT, req.headers);
  const method = req.method ?? 'GET';
  const span = tracer.startSpan(method, { kind: SpanKind.SERVER, attributes: { 'http.request.method': method, 'url.path': (req.url ?? '/').split('?', 1)[0] ?? '/' } }, parent);
  res.once('close', () => {
    span.setAttribute('http.response.status_code', res.statusCode);
    if (res.statusCode >= 500) span.setStatus({ code: SpanStatusCode.ERROR });
    span.end();
  });
  return context.with(trace.setSpan(parent, span), handle);
}

/** Names the request's server span after its operation (`GET /ondemand/movies/{id}`). */
export function nameServerSpan(method: string, template: string): void {
  const span = trace.getActiveSpan();
  span?.updateName(`${method} ${template}`);
  span?.setAttribute('http.route', template);
}

/** Runs a call to another service in a client span, its context sent on in `headers`. */
export async function inClientSpan<T>(name: string, headers: Record<string, string>, call: () => Promise<T>): Promise<T> {
  const span = tracer.startSpan(name, { kind: SpanKind.CLIENT });
  propagation.inject(trace.setSpan(context.active(), span), headers);
  try {
    return await call();
  } catch (error) {
    span.setStatus({ code: SpanStatusCode.ERROR });
    throw error;
  } finally {
    span.end();
  }
}

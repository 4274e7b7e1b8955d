import { context, diag, DiagLogLevel, isSpanContextValid, propagation, ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, TraceFlags, type Attributes, type Link, type Span, type SpanContext, type Tracer } from '@opentelemetry/api';
import type { TracingConfig } from '../config.js';

/** A W3C `traceparent` as a client or a caller sent it. */
export interface IncomingTraceContext {
  readonly traceId: string;
  readonly spanId: string;
  readonly sampled: boolean;
  /** The headers as received, to pass on when the gateway does not trace itself. */
  readonly traceparent: string;
  readonly tracestate?: string;
}

const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$/;
const TRACESTATE = /^[\x20-\x7e]{1,512}$/;

/**
 * The trace context of a request (W3C Trace Context, level 1): a valid `traceparent` (any version but
 * ff; version 00 exactly as specified), with its `tracestate` when that is printable and short.
 */
export function parseTraceContext(traceparent: string | string[] | undefined, tracestate: string | string[] | undefined): IncomingTraceContext | undefined {
  if (typeof traceparent !== 'string') return undefined;
  const match = TRACEPARENT.exec(traceparent.trim());
  if (!match) return undefined;
  const [, version, traceId = '', spanId = '', flags = ''] = match;
  if (version === 'ff' || (version === '00' && match[5] !== undefined)) return undefined;
  if (!isSpanContextValid({ traceId, spanId, traceFlags: 0 })) return undefined;
  const state = typeof tracestate === 'string' && TRACESTATE.test(tracestate) ? tracestate : undefined;
  return { traceId, spanId, sampled: (Number.parseInt(flags, 16) & 1) === 1, traceparent: `00-${traceId}-${spanId}-${flags}`, ...(state ? { tracestate: state } : {}) };
}

/** The process's tracer, once the SDK runs: spans go to the configured exporter. */
export interface Tracing {
  readonly tracer: Tracer;
  /** Continue a client's trace (TRACE_TRUST_CLIENT), or start a new one with the client's as a link. */
  readonly trustClientContext: boolean;
  /** Writes `traceparent` / `tracestate` for `span` into `headers`. */
  inject(span: Span, headers: Record<string, string>): void;
  /**
   * A server span for a request that came with `incoming` (or none): its child when the client is
   * trusted, else the root of a new trace that links to the client's.
   */
  startServerSpan(name: string, attributes: Attributes, incoming: IncomingTraceContext | undefined): Span;
  /** A span under `parent`: the gateway passes parents explicitly (no context manager to pay for). */
  startChild(parent: Span, name: string, kind: SpanKind, attributes?: Attributes): Span;
  /** Exports what is left and stops. */
  shutdown(): Promise<void>;
}

export interface TracedProcess {
  /**
   * Keep the active span in AsyncLocalStorage (OpenTelemetry's global context API): for code that does
   * not pass parents itself, the reference services. It slows every promise on Node 20.
   */
  readonly contextManager?: boolean;
  /** `service.name`, unless OTEL_SERVICE_NAME says otherwise (and `fixedName` is not set). */
  readonly serviceName: string;
  readonly serviceVersion: string;
  /** The name wins over OTEL_SERVICE_NAME (the reference services share the launcher's environment). */
  readonly fixedName?: boolean;
  /** Where the SDK's own warnings go (an exporter that cannot reach the collector). */
  readonly warn: (message: string) => void;
}

/**
 * Starts the OpenTelemetry SDK when tracing is configured (else nothing is loaded and nothing costs):
 * a tracer provider with the standard OTEL_* configuration (sampler, batch processor, resource), the
 * OTLP/HTTP exporter in the configured protocol (protobuf or JSON), W3C Trace Context as the process's
 * propagator, and, when asked, a context manager on AsyncLocalStorage.
 */
export async function startTracing(config: TracingConfig, process: TracedProcess): Promise<Tracing | undefined> {
  if (!config.enabled) return undefined;
  const [sdk, resources, { W3CTraceContextPropagator, TraceState }, exporter] = await Promise.all([
    import('@opentelemetry/sdk-trace-base'),
    import('@opentelemetry/resources'),
    import('@opentelemetry/core'),
    config.exporter === 'console'
      ? import('@opentelemetry/sdk-trace-base').then(({ ConsoleSpanExporter }) => new ConsoleSpanExporter())
      : config.protocol === 'http/json'
        ? import('@opentelemetry/exporter-trace-otlp-http').then(({ OTLPTraceExporter }) => new OTLPTraceExporter())
        : import('@opentelemetry/exporter-trace-otlp-proto').then(({ OTLPTraceExporter }) => new OTLPTraceExporter()),
  ]);
  diag.setLogger(
    { error: process.warn, warn: process.warn, info: () => undefined, debug: () => undefined, verbose: () => undefined },
    { logLevel: DiagLogLevel.WARN, suppressOverrideMessage: true },
  );
  const own = resources.resourceFromAttributes({ 'service.name': process.serviceName, 'service.version': process.serviceVersion });
  const fromEnvironment = resources.detectResources({ detectors: [resources.envDetector] });
  const resource = process.fixedName ? resources.defaultResource().merge(fromEnvironment).merge(own) : resources.defaultResource().merge(own).merge(fromEnvironment);
  const provider = new sdk.BasicTracerProvider({ resource, spanProcessors: [new sdk.BatchSpanProcessor(exporter)] });
  trace.setGlobalTracerProvider(provider);
  if (process.contextManager) {
    const { AsyncLocalStorageContextManager } = await import('@opentelemetry/context-async-hooks');
    context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  }
  const propagator = new W3CTraceContextPropagator();
  propagation.setGlobalPropagator(propagator);
  const setter = { set: (carrier: Record<string, string>, key: string, value: string) => void (carrier[key] = value) };
  const tracer = provider.getTracer(process.serviceName, process.serviceVersion);
  const trustClientContext = config.trustClientContext;
  return {
    tracer,
    trustClientContext,
    inject: (span, headers) => propagator.inject(trace.setSpan(ROOT_CONTEXT, span), headers, setter),
    startServerSpan(name, attributes, incoming) {
      const remote: SpanContext | undefined = incoming && {
        traceId: incoming.traceId,
        spanId: incoming.spanId,
        traceFlags: incoming.sampled ? TraceFlags.SAMPLED : TraceFlags.NONE,
        isRemote: true,
        ...(incoming.tracestate ? { traceState: new TraceState(incoming.tracestate) } : {}),
      };
      const parent = remote && trustClientContext ? trace.setSpanContext(ROOT_CONTEXT, remote) : ROOT_CONTEXT;
      const links: Link[] = remote && !trustClientContext ? [{ context: remote }] : [];
      return tracer.startSpan(name, { kind: SpanKind.SERVER, attributes, links }, parent);
    },
    startChild: (parent, name, kind, attributes) => tracer.startSpan(name, { kind, ...(attributes ? { attributes } : {}) }, trace.setSpan(ROOT_CONTEXT, parent)),
    shutdown: () => provider.shutdown(),
  };
}

/** Ends a span, marked as an error when `failed` says why. */
export function endSpan(span: Span, failed?: string): void {
  if (failed !== undefined) {
    span.setStatus({ code: SpanStatusCode.ERROR, message: failed });
    span.setAttribute('error.type', failed);
  }
  span.end();
}

/** Runs `work` in a child span of `parent`, ended (as an error if `work` fails) when it is done. */
export async function inChildSpan<T>(tracing: Tracing, parent: Span, name: string, attributes: Attributes, work: (span: Span) => Promise<T>): Promise<T> {
  const span = tracing.startChild(parent, name, SpanKind.INTERNAL, attributes);
  try {
    const result = await work(span);
    endSpan(span);
    return result;
  } catch (error) {
    endSpan(span, error instanceof Error ? error.name : 'error');
    throw error;
  }
}

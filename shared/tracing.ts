import { context, diag, DiagLogLevel, propagation, ROOT_CONTEXT, SpanKind, trace, TraceFlags, type Attributes, type Link, type Span, type SpanContext, type Tracer } from '@opentelemetry/api';
import { z } from 'zod';
import { absoluteUrl, ConfigError, flag, oneOf, parsed } from './settings.js';

/* OpenTelemetry for every process of the stack: whether tracing is on (the OTEL_* variables) and the
   SDK that exports the spans, started by the gateway and by each reference service. */

const OTLP_PROTOCOLS = ['http/protobuf', 'http/json', 'grpc'] as const;
const TRACE_EXPORTERS = ['otlp', 'console', 'none'] as const;

/**
 * OpenTelemetry tracing. The SDK reads the standard OTEL_* variables itself (endpoint, headers,
 * sampler, batch sizes, resource); the gateway only decides whether tracing is on and checks what it
 * can support.
 */
export interface TracingConfig {
  /** An exporter is configured (OTEL_EXPORTER_OTLP_[TRACES_]ENDPOINT, or OTEL_TRACES_EXPORTER=console) and the SDK is not disabled. */
  readonly enabled: boolean;
  readonly exporter: 'otlp' | 'console';
  readonly protocol: 'http/protobuf' | 'http/json';
  /** TRACE_TRUST_CLIENT: continue a client's `traceparent` (else a new trace, the client's as a link). */
  readonly trustClientContext: boolean;
}

/** The variables that decide tracing: the gateway's, and the reference services' too. */
export const tracingShape = {
  OTEL_SDK_DISABLED: oneOf('OTEL_SDK_DISABLED', ['true', 'false']),
  OTEL_TRACES_EXPORTER: oneOf('OTEL_TRACES_EXPORTER', TRACE_EXPORTERS, 'otlp'),
  OTEL_EXPORTER_OTLP_ENDPOINT: absoluteUrl('OTEL_EXPORTER_OTLP_ENDPOINT', ['http:', 'https:']),
  OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: absoluteUrl('OTEL_EXPORTER_OTLP_TRACES_ENDPOINT', ['http:', 'https:']),
  OTEL_EXPORTER_OTLP_PROTOCOL: oneOf('OTEL_EXPORTER_OTLP_PROTOCOL', OTLP_PROTOCOLS, 'http/protobuf'),
  OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: oneOf('OTEL_EXPORTER_OTLP_TRACES_PROTOCOL', OTLP_PROTOCOLS),
  TRACE_TRUST_CLIENT: flag('TRACE_TRUST_CLIENT', true),
};
const tracingSchema = z.object(tracingShape);

/** The tracing configuration of variables already read through `tracingShape`. */
export function tracingOf(vars: z.infer<typeof tracingSchema>): TracingConfig {
  const exporter = vars.OTEL_TRACES_EXPORTER;
  const endpoint = vars.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT ?? vars.OTEL_EXPORTER_OTLP_ENDPOINT;
  const enabled = vars.OTEL_SDK_DISABLED !== 'true' && exporter !== 'none' && (exporter === 'console' || endpoint !== undefined);
  const protocol = vars.OTEL_EXPORTER_OTLP_TRACES_PROTOCOL ?? vars.OTEL_EXPORTER_OTLP_PROTOCOL;
  if (enabled && exporter === 'otlp' && protocol === 'grpc') {
    throw new ConfigError('OTEL_EXPORTER_OTLP_PROTOCOL=grpc is not supported: use http/protobuf or http/json (the collector\'s port 4318)');
  }
  return {
    enabled,
    exporter: exporter === 'console' ? 'console' : 'otlp',
    protocol: protocol === 'http/json' ? 'http/json' : 'http/protobuf',
    trustClientContext: vars.TRACE_TRUST_CLIENT,
  };
}

/** Tracing's part of the configuration alone (what the reference services read). */
export function loadTracingConfig(env: NodeJS.ProcessEnv = process.env): TracingConfig {
  return tracingOf(parsed(tracingSchema, env));
}


/** The part of a client's W3C trace context a server span needs (the gateway parses it). */
export interface ClientTraceContext {
  readonly traceId: string;
  readonly spanId: string;
  readonly sampled: boolean;
  readonly tracestate?: string;
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
  startServerSpan(name: string, attributes: Attributes, incoming: ClientTraceContext | undefined): Span;
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

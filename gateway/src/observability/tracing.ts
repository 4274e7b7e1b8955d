import { isSpanContextValid, SpanKind, SpanStatusCode, type Attributes, type Span } from '@opentelemetry/api';
import type { Tracing } from '../../../shared/tracing.js';

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

import type { Readable } from 'node:stream';
import type { Dispatcher } from 'undici';
import type { Identity } from '../auth/identity.js';
import type { Forwarded } from '../forwarded.js';
import type { Span } from '@opentelemetry/api';
import type { IncomingTraceContext } from '../observability/tracing.js';
import type { UpstreamName } from '../../../shared/upstreams.js';
import type { AttemptSink } from '../observability/attempts.js';
import type { UpstreamOperation } from '../routing/operations.js';

/** The client request an upstream call is made for: what the upstream is told about it. */
export interface Caller {
  readonly requestId: string;
  /** The verified caller, when there is one. */
  readonly identity?: Identity;
  /** The client's Authorization header, passed on as it came. */
  readonly authorization?: string;
  /** Where the client request came from; absent for the gateway's own calls (readiness checks). */
  readonly forwarded?: Forwarded;
  /** The client's trusted trace context, passed on as it came when the gateway does not trace itself. */
  readonly trace?: IncomingTraceContext;
  /** When tracing: the span the call's own span is a child of (the request's, or a GraphQL step's). */
  readonly traceParent?: Span;
  /** Where each attempt is recorded for the request's access line. */
  readonly attempts?: AttemptSink;
}

/** One call to an upstream, as a face asks for it. */
export interface UpstreamCall {
  readonly method: string;
  /** Relative to the upstream's base URL: a path the REST route table checked, or one built from an operation. */
  readonly path: string;
  /** The raw query string, without "?" ("" or absent for none). */
  readonly query?: string;
  /** The face's end-to-end headers; the gateway's own are added by the client. */
  readonly headers?: Readonly<Record<string, string | string[]>>;
  readonly body?: string | Buffer | Readable | null;
  readonly caller: Caller;
  /** The OpenAPI operation the call is for (GraphQL): the target must fit its path template. */
  readonly operation?: UpstreamOperation;
  /**
   * The operation a REST call reaches, as its route and path matched it (`operationReached`), for the
   * guards; unlike `operation`, the target is not held to the template (REST forwards what it checked).
   */
  readonly routedOperation?: UpstreamOperation;
  /** `relay`: a 3xx is an answer like any other (REST); `refuse`: a 3xx is a failure (GraphQL). */
  readonly redirects?: 'relay' | 'refuse';
  /** Fail once the body passes this many bytes (for answers read whole); streamed answers have no cap. */
  readonly responseLimitBytes?: number;
  /** Replaces UPSTREAM_TIMEOUT_MS for this call (readiness checks use a shorter one). */
  readonly timeoutMs?: number;
  /** The whole answer, body included, must arrive within the timeout (for answers read whole). */
  readonly deadline?: boolean;
  /** Aborts the call (the client went away). */
  readonly signal?: AbortSignal;
}

/** The spec operation a call reaches, from either face. */
export function operationOf(call: UpstreamCall): UpstreamOperation | undefined {
  return call.operation ?? call.routedOperation;
}

/** Gives back what a guard held for a call (its place among the calls in flight). */
export type CallRelease = () => void;

/** A rule some calls must pass before they are made (a limit on account creation, on password checks in flight). */
export interface CallGuard {
  applies(upstream: UpstreamName, call: UpstreamCall): boolean;
  /**
   * Resolves to go ahead, with a release when the guard holds something until the upstream has
   * answered (or the call failed); rejects with the catalogue's error to refuse the call.
   */
  check(call: UpstreamCall): Promise<CallRelease | undefined>;
}

/** What the interceptors read of a call: carried on undici's dispatch options. */
export interface DispatchWithCall extends Dispatcher.DispatchOptions {
  readonly call: UpstreamCall;
}

export function callOf(options: Dispatcher.DispatchOptions): UpstreamCall {
  return (options as DispatchWithCall).call;
}

import type { UpstreamOutcome } from '../observability/attempts.js';
import { STATUS_CODES } from 'node:http';
import { errors as undiciErrors } from 'undici';
import { bodyErrorOf, bodyTimedOut, BodyTimeoutError, BodyTooLargeError, payloadTooLarge } from '../request-body.js';
import { GatewayError, internalError, type ErrorCode } from '../errors.js';
import { UPSTREAMS, type UpstreamName } from '../../../shared/upstreams.js';

/** The whole answer did not arrive within the call's deadline. */
export class UpstreamDeadlineError extends Error {
  readonly code = 'GW_ERR_UPSTREAM_DEADLINE';
}

/** The answer's body passed the call's byte limit. */
export class ResponseTooLargeError extends Error {
  readonly code = 'GW_ERR_RESPONSE_TOO_LARGE';
}

/** The upstream answered with a redirect on a call that does not relay them. */
export class RedirectRefusedError extends Error {
  readonly code = 'GW_ERR_REDIRECT_REFUSED';
}

/** The upstream's circuit is open: the call was not made. */
export class CircuitOpenError extends Error {
  readonly code = 'GW_ERR_CIRCUIT_OPEN';

  constructor(readonly retryAfterMs: number) {
    super(`circuit open for another ${retryAfterMs} ms`);
  }
}

/** The call's target does not fit its operation's path template: the call was not made. */
export class UnsafeTargetError extends Error {
  readonly code = 'GW_ERR_UNSAFE_TARGET';
}

/** The upstream answered with a status no HTTP answer has. */
export class InvalidStatusError extends Error {
  readonly code = 'GW_ERR_INVALID_STATUS';
}

/** A body that was to be JSON is not. */
export class InvalidResponseBodyError extends Error {
  readonly code = 'GW_ERR_INVALID_RESPONSE_BODY';
}

/** How an upstream call failed. */
export type Failure =
  | 'timeout'
  | 'unreachable'
  | 'truncated'
  | 'too_large'
  | 'redirect'
  | 'invalid_status'
  | 'invalid_body'
  | 'circuit_open'
  | 'unsafe_target'
  | 'request_too_large'
  | 'request_timeout'
  | 'request_length_mismatch'
  | 'aborted'
  | 'unexpected';

const SYSCALL_ERROR = /^E[A-Z]+$/;
const TRANSPORT_CODES = new Set(['UND_ERR_SOCKET', 'UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_CLOSED', 'UND_ERR_DESTROYED', 'UND_ERR_INFO']);

/**
 * The one classification of upstream call errors. `responseStarted`: the upstream's status line had
 * arrived, so a broken connection means a truncated answer rather than an unreachable upstream.
 */
export function failureOf(error: unknown, responseStarted: boolean): Failure {
  if (error instanceof UpstreamDeadlineError || error instanceof undiciErrors.HeadersTimeoutError || error instanceof undiciErrors.BodyTimeoutError) return 'timeout';
  if (error instanceof ResponseTooLargeError) return 'too_large';
  if (error instanceof RedirectRefusedError) return 'redirect';
  if (error instanceof InvalidStatusError) return 'invalid_status';
  if (error instanceof InvalidResponseBodyError) return 'invalid_body';
  if (error instanceof CircuitOpenError) return 'circuit_open';
  if (error instanceof UnsafeTargetError) return 'unsafe_target';
  if (bodyErrorOf(error, BodyTooLargeError)) return 'request_too_large';
  if (bodyErrorOf(error, BodyTimeoutError)) return 'request_timeout';
  if (error instanceof undiciErrors.RequestContentLengthMismatchError) return 'request_length_mismatch';
  if (error instanceof undiciErrors.RequestAbortedError || (error instanceof Error && error.name === 'AbortError')) return 'aborted';
  if (error instanceof undiciErrors.ResponseContentLengthMismatchError) return 'truncated';
  const code = (error as { code?: unknown } | undefined)?.code;
  if (typeof code === 'string' && (SYSCALL_ERROR.test(code) || TRANSPORT_CODES.has(code) || code.startsWith('HPE_'))) {
    return responseStarted ? 'truncated' : 'unreachable';
  }
  return 'unexpected';
}

/** Failures that say the upstream is unwell (the circuit breaker counts them). */
export function isUpstreamFault(failure: Failure): boolean {
  return failure === 'timeout' || failure === 'unreachable' || failure === 'truncated' || failure === 'invalid_status';
}


/** Failures the caller chose (a refused redirect, a client gone): the upstream's status, when it came, is the outcome. */
export function outcomeOf(failure: Failure, status: number | undefined): UpstreamOutcome {
  switch (failure) {
    case 'timeout':
    case 'unreachable':
    case 'truncated':
    case 'too_large':
      return failure;
    case 'unexpected':
      return 'error';
    default:
      return status ?? 'aborted';
  }
}

const FAILURE_ANSWERS: Readonly<Record<Exclude<Failure, 'request_too_large' | 'request_timeout' | 'unexpected'>, { code: ErrorCode; detail: (title: string) => string; status?: number }>> = {
  timeout: { code: 'UPSTREAM_TIMEOUT', detail: (title) => `The ${title} service did not answer in time` },
  unreachable: { code: 'UPSTREAM_UNAVAILABLE', detail: (title) => `The ${title} service is unavailable` },
  circuit_open: { code: 'UPSTREAM_UNAVAILABLE', detail: (title) => `The ${title} service is unavailable` },
  aborted: { code: 'UPSTREAM_UNAVAILABLE', detail: (title) => `The call to the ${title} service was cancelled` },
  truncated: { code: 'UPSTREAM_UNAVAILABLE', detail: (title) => `The ${title} service sent an incomplete answer` },
  too_large: { code: 'UPSTREAM_UNAVAILABLE', detail: (title) => `The ${title} service sent an answer over the gateway's size limit` },
  redirect: { code: 'UPSTREAM_UNAVAILABLE', detail: (title) => `The ${title} service answered with a redirect, which the gateway does not follow` },
  invalid_status: { code: 'UPSTREAM_UNAVAILABLE', detail: (title) => `The ${title} service sent an answer that is not valid HTTP`, status: 502 },
  invalid_body: { code: 'UPSTREAM_UNAVAILABLE', detail: (title) => `The ${title} service sent an answer that is not valid JSON` },
  unsafe_target: { code: 'BAD_USER_INPUT', detail: () => 'An argument does not fit the upstream operation it is sent to' },
  request_length_mismatch: { code: 'BAD_USER_INPUT', detail: () => 'The request body does not match its Content-Length' },
};

/**
 * The one failure mapping, for both faces: an error of a call to `upstream` as the catalogue's kind,
 * with the original error as `cause`.
 */
export function upstreamFailure(error: unknown, upstream: UpstreamName, responseStarted = false): GatewayError {
  if (error instanceof GatewayError) return error;
  const failure = failureOf(error, responseStarted);
  if (failure === 'request_too_large') return payloadTooLarge(bodyErrorOf(error, BodyTooLargeError)?.limit ?? 0, error);
  if (failure === 'request_timeout') return bodyTimedOut(bodyErrorOf(error, BodyTimeoutError) as BodyTimeoutError);
  if (failure === 'unexpected') return internalError(error);
  const { code, detail, status } = FAILURE_ANSWERS[failure];
  const headers = error instanceof CircuitOpenError ? { 'retry-after': String(Math.max(1, Math.ceil(error.retryAfterMs / 1000))) } : undefined;
  return new GatewayError(code, detail(UPSTREAMS[upstream].title), { cause: error, ...(headers ? { headers } : {}), ...(status ? { status } : {}) });
}

/** The catalogue kind for an upstream's error status: what a GraphQL client reads in `extensions.code`. */
export function codeForStatus(status: number): ErrorCode {
  if (status === 401) return 'UNAUTHENTICATED';
  if (status === 403) return 'FORBIDDEN';
  if (status === 404) return 'NOT_FOUND';
  if (status === 405) return 'METHOD_NOT_ALLOWED';
  if (status === 413) return 'PAYLOAD_TOO_LARGE';
  if (status === 429) return 'RATE_LIMITED';
  if (status === 504) return 'UPSTREAM_TIMEOUT';
  if (status >= 500) return 'UPSTREAM_UNAVAILABLE';
  return 'BAD_USER_INPUT';
}

const MAX_DETAIL_LENGTH = 300;

/**
 * Text that may not reach a client inside an upstream's `detail`: URLs, addresses, host names with a
 * port or an internal suffix, file paths, credentials, stack frames and exception names.
 */
const INTERNALS = [
  /[a-z][\w+.-]*:\/\//i,
  /\b\d{1,3}(?:\.\d{1,3}){3}\b/,
  /\[[0-9a-f:.]+\]|\b(?:[0-9a-f]{1,4}:){3,7}[0-9a-f]{1,4}\b|::(?:ffff:)?[0-9a-f.]+\b/i,
  /\b[\w-]+(?:\.[\w-]+)*:\d{2,5}\b/,
  /\b[\w-]+\.(?:internal|local|localdomain|lan|corp|svc|cluster|intranet)\b/i,
  /(?:^|[\s"'(=])(?:~|\.{1,2})?\/[\w.-]+\/[\w./-]*/,
  /\b[A-Za-z]:\\/,
  /\\/,
  /\b[\w-]+\.(?:js|mjs|cjs|ts|py|rb|go|java|php|cs|rs|kt|scala|sql)\b/i,
  /\bat [\w$.<>]+ \(|\bline \d+\b|\btraceback\b|\bstack\b|exception\b|\berrno\b|\b\w*error:\s/i,
  /\bE[A-Z]{3,}\b/,
  /\S+:\S+@\S+/,
  /\b(?:password|passwd|pwd|secret|token|apikey|api_key)\s*[=:]/i,
  // eslint-disable-next-line no-control-regex
  /[\u0000-\u001f\u007f]/,
];

/** Whether an upstream's `detail` is a plain sentence written for users (and so may be shown). */
export function isUserFacing(detail: string): boolean {
  return detail.trim() !== '' && detail.length <= MAX_DETAIL_LENGTH && !INTERNALS.some((pattern) => pattern.test(detail));
}

/** Only the FastAPI validation fields are kept from an upstream's error list, and only plain messages. */
function validationIssues(list: unknown[]): unknown[] {
  return list.slice(0, 100).map((item) => {
    const { loc, msg, type } = (typeof item === 'object' && item !== null ? item : {}) as Record<string, unknown>;
    return {
      loc: Array.isArray(loc) ? loc.filter((part) => typeof part === 'string' || typeof part === 'number').slice(0, 10) : [],
      msg: typeof msg === 'string' && isUserFacing(msg) ? msg : 'Invalid value',
      type: typeof type === 'string' && /^[\w.]{1,64}$/.test(type) ? type : 'value_error',
    };
  });
}

export interface UpstreamHttpFailure {
  readonly error: GatewayError;
  /** The upstream's own text, when the client is not shown it: for the log. */
  readonly withheld?: string;
}

/**
 * An upstream's error status as the catalogue's kind, status kept: a 4xx keeps its `detail` when it is
 * a plain sentence (a validation list goes to `errors`), a 5xx keeps nothing of its body.
 */
export function upstreamHttpFailure(upstream: UpstreamName, status: number, bodyText: string, upstreamHeaders: Record<string, string | string[] | undefined>): UpstreamHttpFailure {
  const headers: Record<string, string> = {};
  for (const name of ['allow', 'retry-after']) {
    const value = upstreamHeaders[name];
    if (typeof value === 'string') headers[name] = value;
  }
  if (status === 401) headers['www-authenticate'] = 'Bearer';
  const { title } = UPSTREAMS[upstream];
  const code = codeForStatus(status);
  if (status >= 500) {
    return { error: new GatewayError(code, `The ${title} service failed to handle the request`, { status, headers }), withheld: bodyText };
  }
  let parsed: { detail?: unknown } | undefined;
  try {
    parsed = JSON.parse(bodyText) as { detail?: unknown };
  } catch {
    parsed = undefined;
  }
  const phrase = STATUS_CODES[status] ?? 'Upstream error';
  if (Array.isArray(parsed?.detail)) {
    return { error: new GatewayError(code, 'Request validation failed', { status, headers, extensions: { errors: validationIssues(parsed.detail) } }) };
  }
  const detail = typeof parsed?.detail === 'string' ? parsed.detail : undefined;
  if (detail !== undefined && isUserFacing(detail)) return { error: new GatewayError(code, detail, { status, headers }) };
  return { error: new GatewayError(code, phrase, { status, headers }), ...(detail !== undefined || bodyText !== '' ? { withheld: bodyText } : {}) };
}

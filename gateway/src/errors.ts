import { STATUS_CODES, type ServerResponse } from 'node:http';

/**
 * The one catalogue of errors the gateway answers with. REST answers RFC 9457 problem+json with the
 * kind's status and title; GraphQL answers the kind's `code` in `extensions.code`.
 */
export const ERROR_KINDS = {
  BAD_REQUEST: { status: 400, title: 'Bad Request', code: 'BAD_USER_INPUT' },
  UNAUTHENTICATED: { status: 401, title: 'Unauthorized', code: 'UNAUTHENTICATED' },
  FORBIDDEN: { status: 403, title: 'Forbidden', code: 'FORBIDDEN' },
  NOT_FOUND: { status: 404, title: 'Not Found', code: 'NOT_FOUND' },
  METHOD_NOT_ALLOWED: { status: 405, title: 'Method Not Allowed', code: 'METHOD_NOT_ALLOWED' },
  PAYLOAD_TOO_LARGE: { status: 413, title: 'Content Too Large', code: 'PAYLOAD_TOO_LARGE' },
  RATE_LIMITED: { status: 429, title: 'Too Many Requests', code: 'RATE_LIMITED' },
  HEADERS_TOO_LARGE: { status: 431, title: 'Request Header Fields Too Large', code: 'HEADERS_TOO_LARGE' },
  INTERNAL: { status: 500, title: 'Internal Server Error', code: 'INTERNAL_SERVER_ERROR' },
  UPSTREAM_UNAVAILABLE: { status: 503, title: 'Service Unavailable', code: 'UPSTREAM_UNAVAILABLE' },
  UPSTREAM_TIMEOUT: { status: 504, title: 'Gateway Timeout', code: 'UPSTREAM_TIMEOUT' },
} as const satisfies Record<string, { status: number; title: string; code: string }>;

export type ErrorKind = keyof typeof ERROR_KINDS;

/** An RFC 9457 problem details document, with the request id for support. */
export interface Problem {
  type: 'about:blank';
  title: string;
  status: number;
  detail: string;
  instance: string;
  requestId: string;
  [extension: string]: unknown;
}

export function problemOf(kind: ErrorKind, detail: string, instance: string, requestId: string, extensions: Record<string, unknown> = {}): Problem {
  const { status, title } = ERROR_KINDS[kind];
  return { ...extensions, type: 'about:blank', title, status, detail, instance, requestId };
}

/** A problem for a status outside the catalogue, such as an upstream's 409 or 422 relayed as it was. */
export function problemForStatus(status: number, detail: string, instance: string, requestId: string, extensions: Record<string, unknown> = {}): Problem {
  return { ...extensions, type: 'about:blank', title: STATUS_CODES[status] ?? 'Error', status, detail, instance, requestId };
}

export function sendProblem(res: ServerResponse, problem: Problem, headers: Record<string, string> = {}): void {
  const payload = JSON.stringify(problem);
  res.writeHead(problem.status, {
    ...headers,
    'content-type': 'application/problem+json',
    'content-length': Buffer.byteLength(payload),
    'cache-control': 'no-store',
  });
  res.end(payload);
}

/** An error the gateway answers with one of the catalogue's kinds; `detail` is safe to show clients. */
export class GatewayError extends Error {
  constructor(
    readonly kind: ErrorKind,
    readonly detail: string,
    readonly headers: Readonly<Record<string, string>> = {},
  ) {
    super(detail);
    this.name = 'GatewayError';
  }

  get status(): number {
    return ERROR_KINDS[this.kind].status;
  }
}

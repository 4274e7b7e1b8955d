import { STATUS_CODES, type IncomingMessage, type ServerResponse } from 'node:http';
import type { GraphQLFormattedError } from 'graphql';
import Negotiator from 'negotiator';

/**
 * The one catalogue of errors the gateway answers with, keyed by public code (as fastify's `FST_ERR_*`
 * and undici's `UND_ERR_*`). The code is `extensions.code` on GraphQL and `code` in a REST problem.
 */
export const ERROR_KINDS = {
  BAD_USER_INPUT: { status: 400, title: 'Bad Request' },
  UNAUTHENTICATED: { status: 401, title: 'Unauthorized' },
  FORBIDDEN: { status: 403, title: 'Forbidden' },
  NOT_FOUND: { status: 404, title: 'Not Found' },
  METHOD_NOT_ALLOWED: { status: 405, title: 'Method Not Allowed' },
  REQUEST_TIMEOUT: { status: 408, title: 'Request Timeout' },
  PAYLOAD_TOO_LARGE: { status: 413, title: 'Content Too Large' },
  URI_TOO_LONG: { status: 414, title: 'URI Too Long' },
  RATE_LIMITED: { status: 429, title: 'Too Many Requests' },
  HEADERS_TOO_LARGE: { status: 431, title: 'Request Header Fields Too Large' },
  INTERNAL_SERVER_ERROR: { status: 500, title: 'Internal Server Error' },
  UPSTREAM_UNAVAILABLE: { status: 503, title: 'Service Unavailable' },
  UPSTREAM_TIMEOUT: { status: 504, title: 'Gateway Timeout' },
} as const satisfies Record<string, { status: number; title: string }>;

export type ErrorCode = keyof typeof ERROR_KINDS;

/**
 * The codes a whole GraphQL request is refused with besides the catalogue's kinds: Apollo's and
 * graphql-js's own (a document that does not parse or validate, an operation it cannot pick, APQ), and the
 * trusted documents'. One list for the error formatter, the metrics and the docs.
 */
export const GRAPHQL_REQUEST_CODES = {
  GRAPHQL_PARSE_FAILED: 400,
  GRAPHQL_VALIDATION_FAILED: 400,
  BAD_REQUEST: 400,
  OPERATION_RESOLUTION_FAILURE: 400,
  // Apollo answers its automatic persisted queries' refusals with 200: clients retry with the query.
  PERSISTED_QUERY_NOT_FOUND: 200,
  PERSISTED_QUERY_NOT_SUPPORTED: 200,
  PERSISTED_DOCUMENT_NOT_FOUND: 400,
  PERSISTED_DOCUMENT_REQUIRED: 400,
} as const satisfies Record<string, number>;

export type GraphQLRequestCode = keyof typeof GRAPHQL_REQUEST_CODES;

export interface GatewayErrorOptions {
  /** What went wrong underneath: logged, never shown. */
  readonly cause?: unknown;
  /** An upstream's own status relayed in place of the kind's (a 409, a 502). */
  readonly status?: number;
  /** Response headers that belong to the error (`WWW-Authenticate`, `Retry-After`, `Allow`). */
  readonly headers?: Readonly<Record<string, string>>;
  /** More members for the problem and the GraphQL extensions (a validation `errors` list). */
  readonly extensions?: Readonly<Record<string, unknown>>;
}

/** An error of the catalogue. `detail` is written for clients; `cause` is for the log. */
export class GatewayError extends Error {
  readonly status: number;
  readonly headers: Readonly<Record<string, string>>;
  readonly extensions: Readonly<Record<string, unknown>>;

  constructor(
    readonly code: ErrorCode,
    readonly detail: string,
    options: GatewayErrorOptions = {},
  ) {
    super(detail, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'GatewayError';
    this.status = options.status ?? ERROR_KINDS[code].status;
    this.headers = options.headers ?? {};
    this.extensions = options.extensions ?? {};
  }

  get title(): string {
    return this.status === ERROR_KINDS[this.code].status ? ERROR_KINDS[this.code].title : (STATUS_CODES[this.status] ?? 'Error');
  }
}

/** The catalogue's answer to an error nobody placed: the cause is logged by whoever renders it. */
export function internalError(cause: unknown): GatewayError {
  return new GatewayError('INTERNAL_SERVER_ERROR', 'The gateway failed to handle this request', { cause });
}

/** What lets support find a request: its id, and its trace when it has one. */
export interface Correlation {
  readonly requestId: string;
  readonly traceId?: string | undefined;
}

/** An RFC 9457 problem details document, with the code, the request id and trace id for support. */
export interface Problem {
  type: 'about:blank';
  title: string;
  status: number;
  code: ErrorCode;
  detail: string;
  instance: string;
  requestId: string;
  traceId?: string;
  [extension: string]: unknown;
}

/** A problem as a JSON Schema, for the OpenAPI document: what toProblem renders, whatever the error. */
export const PROBLEM_SCHEMA = {
  type: 'object',
  description: 'RFC 9457 problem details, as the gateway answers every error of the REST face',
  required: ['type', 'title', 'status', 'code', 'detail', 'instance', 'requestId'],
  properties: {
    type: { const: 'about:blank' },
    title: { type: 'string' },
    status: { type: 'integer', minimum: 400, maximum: 599 },
    code: { enum: Object.keys(ERROR_KINDS), description: 'The error catalogue’s code' },
    detail: { type: 'string' },
    instance: { type: 'string' },
    requestId: { type: 'string' },
    traceId: { type: 'string' },
  },
};

/** The request and trace ids as members of a problem or a GraphQL error's extensions. */
export function correlationMembers({ requestId, traceId }: Correlation): { requestId: string; traceId?: string } {
  return traceId === undefined ? { requestId } : { requestId, traceId };
}

/** Renderer one of two: the REST face's problem+json. Extensions never override the standard members. */
export function toProblem(error: GatewayError, instance: string, correlation: Correlation): Problem {
  return { ...error.extensions, type: 'about:blank', title: error.title, status: error.status, code: error.code, detail: error.detail, instance, ...correlationMembers(correlation) };
}

/**
 * Renderer two of two: a GraphQL error, at a field's place in the response (`at`), or for the whole
 * request (with its request id: within an execution the GraphQL face adds it to every error at once).
 */
export function toGraphQLError(error: GatewayError, at: Pick<GraphQLFormattedError, 'locations' | 'path'> = {}, correlation?: Correlation): GraphQLFormattedError {
  return {
    message: error.detail,
    ...(at.locations ? { locations: at.locations } : {}),
    ...(at.path ? { path: at.path } : {}),
    extensions: { ...error.extensions, code: error.code, ...(correlation ? correlationMembers(correlation) : {}) },
  };
}

/** The bytes of a problem response, with the error's own headers. */
export function problemResponse(error: GatewayError, instance: string, correlation: Correlation): { status: number; headers: Record<string, string | number>; body: string } {
  const body = JSON.stringify(toProblem(error, instance, correlation));
  return {
    status: error.status,
    headers: { ...error.headers, 'content-type': 'application/problem+json', 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store' },
    body,
  };
}

export function sendProblem(res: ServerResponse, error: GatewayError, instance: string, correlation: Correlation): void {
  const { status, headers, body } = problemResponse(error, instance, correlation);
  res.writeHead(status, headers).end(body);
}

/**
 * The media types of a GraphQL answer (GraphQL-over-HTTP) as Apollo Server offers them, the legacy one
 * first: it answers no Accept, an Accept of any type, and an Accept that names neither.
 */
export const GRAPHQL_MEDIA_TYPES = ['application/json; charset=utf-8', 'application/graphql-response+json; charset=utf-8'] as const;

/**
 * The media type the client prefers for a GraphQL answer, negotiated from its Accept as Apollo Server
 * negotiates its own (Apollo Client 4 reads the errors of a non-2xx answer only from
 * `application/graphql-response+json`).
 */
export function graphqlMediaType(req: IncomingMessage): (typeof GRAPHQL_MEDIA_TYPES)[number] {
  const preferred = new Negotiator(req).mediaType(GRAPHQL_MEDIA_TYPES);
  return GRAPHQL_MEDIA_TYPES.find((type) => type === preferred) ?? GRAPHQL_MEDIA_TYPES[0];
}

/** The one writer of the GraphQL answers the gateway makes itself: errors only, no data, in the client's media type. */
export function sendGraphQLErrors(req: IncomingMessage, res: ServerResponse, status: number, errors: readonly GraphQLFormattedError[], headers: Readonly<Record<string, string>> = {}): void {
  const body = JSON.stringify({ errors });
  res.writeHead(status, { ...headers, 'content-type': graphqlMediaType(req), 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store' });
  res.end(body);
}

/** A GraphQL response failing as a whole (a refused token, a body too large, a 429), with the kind's status. */
export function sendGraphQLError(req: IncomingMessage, res: ServerResponse, error: GatewayError, correlation: Correlation): void {
  sendGraphQLErrors(req, res, error.status, [toGraphQLError(error, {}, correlation)], error.headers);
}

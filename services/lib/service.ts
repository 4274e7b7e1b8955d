import { createServer, type IncomingHttpHeaders, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { readFileSync } from 'node:fs';
import { OpenAPIBackend, type Context, type Document } from 'openapi-backend';
import { parse } from 'yaml';
import addFormats from 'ajv-formats';
import { HttpError, ValidationFailed } from './errors.js';
import { cacheControlFor } from './cache-control.js';
import { inServerSpan, nameServerSpan } from './tracing.js';
import { toValidationIssues } from './validation.js';

/** What a handler sees: the request after routing and validation against the service's spec. */
export interface ServiceRequest {
  readonly params: Record<string, string>;
  readonly query: Record<string, unknown>;
  readonly body: unknown;
  readonly headers: IncomingHttpHeaders;
}

export interface Reply {
  readonly status?: number;
  readonly body?: unknown;
  readonly headers?: Readonly<Record<string, string>>;
}

export type OperationHandler = (request: ServiceRequest) => Reply | Promise<Reply>;

export interface ServiceDefinition {
  readonly name: string;
  /** Path of the OpenAPI document the service implements. */
  readonly spec: string;
  /** One handler per operationId of the spec, no more, no less. */
  readonly handlers: Readonly<Record<string, OperationHandler>>;
}

const MAX_BODY_BYTES = 1024 * 1024;

function isJsonContentType(contentType: string | undefined): boolean {
  if (!contentType) return false;
  const mediaType = contentType.split(';')[0]?.trim().toLowerCase() ?? '';
  return mediaType === 'application/json' || mediaType.endsWith('+json');
}

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const declared = Number(req.headers['content-length'] ?? 0);
  if (declared > MAX_BODY_BYTES) throw new HttpError(413, 'Request body too large');
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) throw new HttpError(413, 'Request body too large');
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

function parseBody(raw: Buffer, contentType: string | undefined): unknown {
  if (raw.length === 0) return undefined;
  const text = raw.toString('utf8');
  if (!isJsonContentType(contentType)) return text;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw new ValidationFailed([{ loc: ['body'], msg: 'JSON decode error', type: 'json_invalid' }]);
  }
}

/** A reply with the operation that made it (errors have none). */
interface Answered extends Reply {
  readonly operationId?: string;
}

function send(res: ServerResponse, reply: Answered): void {
  const status = reply.status ?? 200;
  const headers: Record<string, string> = { 'cache-control': cacheControlFor(reply.operationId, status), ...reply.headers };
  if (reply.body === undefined || status === 204) {
    res.writeHead(status, headers).end();
    return;
  }
  const payload = JSON.stringify(reply.body);
  headers['content-type'] = 'application/json';
  headers['content-length'] = String(Buffer.byteLength(payload));
  res.writeHead(status, headers).end(payload);
}

function errorReply(error: unknown, serviceName: string): Reply {
  if (error instanceof HttpError) return { status: error.status, body: { detail: error.detail } };
  if (error instanceof ValidationFailed) return { status: 422, body: { detail: error.issues } };
  console.error(`[${serviceName}] unhandled error`, error);
  return { status: 500, body: { detail: 'Internal Server Error' } };
}

function requestOf(context: Context, headers: IncomingHttpHeaders): ServiceRequest {
  const coerced = context.validation.coerced as { query?: Record<string, unknown>; params?: Record<string, string> } | undefined;
  return {
    params: coerced?.params ?? (context.request.params as Record<string, string>),
    query: coerced?.query ?? (context.request.query as Record<string, unknown>),
    body: context.request.requestBody as unknown,
    headers,
  };
}

/** Builds an HTTP server that routes and validates every request against the service's OpenAPI spec. */
export async function createServiceServer(definition: ServiceDefinition): Promise<Server> {
  // The specs are validated by the test suite, not at every start: quick mode parses the document once
  // (given as an object), skips re-validating it and compiles each operation's validators on its first
  // request, once per process.
  const api = new OpenAPIBackend({
    definition: parse(readFileSync(definition.spec, 'utf8')) as Document,
    quick: true,
    strict: true,
    coerceTypes: true,
    ajvOpts: { allErrors: true, useDefaults: true },
    customizeAjv: (ajv) => {
      addFormats.default(ajv);
      return ajv;
    },
  });
  await api.init();

  const operationIds = api.getOperations().map((operation) => operation.operationId ?? '');
  const missing = operationIds.filter((id) => !(id in definition.handlers));
  const extra = Object.keys(definition.handlers).filter((id) => !operationIds.includes(id));
  if (missing.length > 0 || extra.length > 0) {
    throw new Error(`${definition.name}: handlers do not match the spec (missing: ${missing.join(', ') || '-'}; extra: ${extra.join(', ') || '-'})`);
  }

  for (const [operationId, handler] of Object.entries(definition.handlers)) {
    api.register(operationId, async (context: Context, headers: IncomingHttpHeaders): Promise<Answered> => {
      nameServerSpan(context.request.method.toUpperCase(), context.operation.path);
      return { ...(await handler(requestOf(context, headers))), operationId };
    });
  }
  api.register({
    validationFail: (context: Context) => {
      throw new ValidationFailed(toValidationIssues(context.validation.errors ?? []));
    },
    notFound: () => {
      throw new HttpError(404, 'Not Found');
    },
    methodNotAllowed: () => {
      throw new HttpError(405, 'Method Not Allowed');
    },
  });

  return createServer((req, res) => {
    void inServerSpan(req, res, async () => {
      let reply: Answered;
      try {
        const target = req.url ?? '/';
        const queryStart = target.indexOf('?');
        const path = queryStart === -1 ? target : target.slice(0, queryStart);
        const query = queryStart === -1 ? '' : target.slice(queryStart + 1);
        const body = parseBody(await readBody(req), req.headers['content-type']);
        reply = (await api.handleRequest(
          { method: req.method ?? 'GET', path, query, headers: req.headers as Record<string, string>, body },
          req.headers,
        )) as Answered;
      } catch (error) {
        reply = errorReply(error, definition.name);
      }
      if (!res.headersSent) send(res, reply);
    });
  });
}

import type { IncomingMessage, ServerResponse } from 'node:http';
import { STATUS_CODES } from 'node:http';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { errors as undiciErrors, type Agent, type Dispatcher } from 'undici';
import { isBodyTooLarge, limitedBody, payloadTooLarge } from '../body-limit.js';
import { createUpstreamAgent } from '../upstream/agent.js';
import { appendVary } from '../cors.js';
import { GatewayError } from '../errors.js';
import { secondsSince, type GatewayMetrics, type UpstreamOutcome } from '../observability/metrics.js';
import { UPSTREAMS, type UpstreamName, type UpstreamUrls } from '../upstreams.js';
import { clientResponseHeaders } from './headers.js';

/** How much of an upstream error body is read to find its `detail`; the rest is discarded. */
const MAX_ERROR_BODY_BYTES = 64 * 1024;
const MAX_DETAIL_LENGTH = 1000;

export interface UpstreamErrorSummary {
  readonly status: number;
  readonly detail: string;
  readonly errors?: unknown[];
  readonly headers: Record<string, string>;
}

export interface ForwardRequest {
  readonly upstream: UpstreamName;
  readonly method: string;
  /** Normalised path and raw query: the upstream URL is the configured base plus exactly these. */
  readonly path: string;
  readonly query: string;
  readonly headers: Record<string, string | string[]>;
}

export interface ProxyOptions {
  readonly upstreams: UpstreamUrls;
  readonly metrics: GatewayMetrics;
  readonly timeoutMs: number;
  readonly bodyLimitBytes: number;
}

async function readCapped(body: Dispatcher.ResponseData['body']): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_ERROR_BODY_BYTES) {
      body.destroy();
      break;
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** Only the FastAPI validation fields are kept from an upstream's error list. */
function validationIssues(list: unknown[]): unknown[] {
  return list.slice(0, 100).map((item) => {
    const { loc, msg, type } = (typeof item === 'object' && item !== null ? item : {}) as Record<string, unknown>;
    return { loc: Array.isArray(loc) ? loc : [], msg: typeof msg === 'string' ? msg : 'Invalid value', type: typeof type === 'string' ? type : 'value_error' };
  });
}

/** An upstream 4xx keeps its status and `detail`; a 5xx keeps its status and nothing else. */
export function summariseUpstreamError(status: number, bodyText: string, title: string, upstreamHeaders: Record<string, string | string[] | undefined>): UpstreamErrorSummary {
  const headers: Record<string, string> = {};
  for (const name of ['allow', 'retry-after']) {
    const value = upstreamHeaders[name];
    if (typeof value === 'string') headers[name] = value;
  }
  if (status >= 500) return { status, detail: `The ${title} service failed to handle the request`, headers };
  let detail = STATUS_CODES[status] ?? 'Upstream error';
  let errors: unknown[] | undefined;
  try {
    const parsed = JSON.parse(bodyText) as { detail?: unknown };
    if (typeof parsed.detail === 'string' && parsed.detail !== '') detail = parsed.detail.slice(0, MAX_DETAIL_LENGTH);
    if (Array.isArray(parsed.detail)) {
      detail = 'Request validation failed';
      errors = validationIssues(parsed.detail);
    }
  } catch {
    // not JSON: the status's own phrase stands
  }
  return { status, detail, headers, ...(errors ? { errors } : {}) };
}

function outcomeOf(error: unknown): UpstreamOutcome {
  if (error instanceof undiciErrors.HeadersTimeoutError || error instanceof undiciErrors.BodyTimeoutError) return 'timeout';
  if (error instanceof undiciErrors.RequestAbortedError || isBodyTooLarge(error)) {
    return 'aborted';
  }
  return 'unreachable';
}

function upstreamFailure(error: unknown, title: string, bodyLimitBytes: number): GatewayError | undefined {
  if (isBodyTooLarge(error)) return payloadTooLarge(bodyLimitBytes);
  if (error instanceof undiciErrors.RequestAbortedError) return undefined;
  if (error instanceof undiciErrors.HeadersTimeoutError || error instanceof undiciErrors.BodyTimeoutError) {
    return new GatewayError('UPSTREAM_TIMEOUT', `The ${title} service did not answer in time`);
  }
  if (error instanceof undiciErrors.RequestContentLengthMismatchError) {
    return new GatewayError('BAD_REQUEST', 'The request body does not match its Content-Length');
  }
  return new GatewayError('UPSTREAM_UNAVAILABLE', `The ${title} service is unavailable`);
}

/**
 * Forwards requests to the upstreams over undici, one keep-alive pool per upstream origin, streaming
 * bodies both ways. Upstream errors come back as summaries for the caller to turn into problems.
 */
export class UpstreamProxy {
  private readonly agent: Agent;
  /** Each upstream's origin and base path, parsed once: the upstream path is the base path plus the checked path. */
  private readonly bases: Readonly<Record<UpstreamName, { origin: string; path: string }>>;

  constructor(private readonly options: ProxyOptions) {
    this.bases = Object.fromEntries(
      Object.entries(options.upstreams).map(([name, url]) => {
        const parsed = new URL(url);
        return [name, { origin: parsed.origin, path: parsed.pathname.replace(/\/$/, '') }];
      }),
    ) as Record<UpstreamName, { origin: string; path: string }>;
    this.agent = createUpstreamAgent();
  }

  /**
   * Sends the request on and streams a success straight to `res`. Answers the upstream's error summary
   * when its status is 400 or more (nothing written to `res` yet), or throws a GatewayError.
   */
  async forward(req: IncomingMessage, res: ServerResponse, request: ForwardRequest): Promise<UpstreamErrorSummary | undefined> {
    const { title } = UPSTREAMS[request.upstream];
    const base = this.bases[request.upstream];
    const hasBody = req.headers['transfer-encoding'] !== undefined || Number(req.headers['content-length'] ?? 0) > 0;
    const abort = new AbortController();
    const onClientGone = () => {
      if (!res.writableFinished) abort.abort();
    };
    res.once('close', onClientGone);

    let response: Dispatcher.ResponseData;
    const started = process.hrtime.bigint();
    try {
      response = await this.agent.request({
        origin: base.origin,
        path: base.path + request.path + (request.query === '' ? '' : `?${request.query}`),
        method: request.method as Dispatcher.HttpMethod,
        headers: request.headers,
        body: hasBody ? Readable.from(limitedBody(req, this.options.bodyLimitBytes), { objectMode: false }) : null,
        headersTimeout: this.options.timeoutMs,
        bodyTimeout: this.options.timeoutMs,
        signal: abort.signal,
      });
    } catch (error) {
      res.off('close', onClientGone);
      this.options.metrics.observeUpstream(request.upstream, request.method, outcomeOf(error), secondsSince(started));
      const failure = upstreamFailure(error, title, this.options.bodyLimitBytes);
      if (failure) throw failure;
      return undefined;
    }

    this.options.metrics.observeUpstream(request.upstream, request.method, response.statusCode, secondsSince(started));
    if (response.statusCode >= 400) {
      res.off('close', onClientGone);
      const text = await readCapped(response.body).catch(() => '');
      return summariseUpstreamError(response.statusCode, text, title, response.headers);
    }

    const { vary, ...headers } = clientResponseHeaders(response.headers);
    if (vary !== undefined) appendVary(res, vary);
    res.writeHead(response.statusCode, headers);
    try {
      await pipeline(response.body, res);
    } catch {
      // The client went away or the upstream broke off mid-body: nothing more can be said on this response.
      res.destroy();
    } finally {
      res.off('close', onClientGone);
    }
    return undefined;
  }

  async close(): Promise<void> {
    await this.agent.close();
  }
}

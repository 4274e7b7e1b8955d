import { request } from 'undici';
import { HttpError } from './errors.js';
import { inClientSpan } from './tracing.js';

export interface ServiceCall {
  readonly method?: 'GET' | 'POST' | 'PUT' | 'DELETE';
  readonly headers?: Readonly<Record<string, string>>;
  readonly body?: unknown;
}

export interface ServiceAnswer<T> {
  readonly status: number;
  readonly body: T;
}

const CALL_TIMEOUT_MS = 5000;

/**
 * Calls another reference service and parses its JSON answer, in the caller's trace. A service that
 * cannot be reached or does not answer in time becomes a 503 naming it, never the network error's text.
 */
export async function callService<T>(serviceTitle: string, baseUrl: string, path: string, call: ServiceCall = {}): Promise<ServiceAnswer<T>> {
  const headers: Record<string, string> = { accept: 'application/json', ...call.headers };
  let payload: string | undefined;
  if (call.body !== undefined) {
    payload = JSON.stringify(call.body);
    headers['content-type'] = 'application/json';
  }
  const method = call.method ?? 'GET';
  try {
    return await inClientSpan(`${method} ${serviceTitle}`, headers, async () => {
      const response = await request(baseUrl + path, { method, headers, body: payload, headersTimeout: CALL_TIMEOUT_MS, bodyTimeout: CALL_TIMEOUT_MS });
      const text = await response.body.text();
      return { status: response.statusCode, body: (text === '' ? undefined : JSON.parse(text)) as T };
    });
  } catch {
    throw new HttpError(503, `The ${serviceTitle} service is unavailable`);
  }
}

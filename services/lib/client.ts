import { request } from 'undici';
import { UPSTREAMS, type UpstreamName } from '../../shared/upstreams.js';
import type { ServiceEnvironment } from './environment.js';
import { HttpError } from './errors.js';
import { inClientSpan } from './tracing.js';

export interface ServiceCall<T> {
  readonly method?: 'GET' | 'POST' | 'PUT' | 'DELETE';
  readonly headers?: Readonly<Record<string, string>>;
  readonly body?: unknown;
  /** What a status other than 2xx means to the caller (its value, or a throw); any other is a 503. */
  readonly on?: Readonly<Record<number, () => T>>;
}

const CALL_TIMEOUT_MS = 5000;

/**
 * Calls another reference service, in the caller's trace, and answers its JSON body (nothing for a
 * 204). A service that cannot be reached, does not answer in time or answers a status the caller did
 * not expect makes this service answer 503 naming it, never the network error's text.
 */
export async function callService<T>(env: ServiceEnvironment, upstream: UpstreamName, path: string, call: ServiceCall<T> = {}): Promise<T> {
  const { title } = UPSTREAMS[upstream];
  const headers: Record<string, string> = { accept: 'application/json', ...call.headers };
  let payload: string | undefined;
  if (call.body !== undefined) {
    payload = JSON.stringify(call.body);
    headers['content-type'] = 'application/json';
  }
  const method = call.method ?? 'GET';
  const unavailable = new HttpError(503, `The ${title} service is unavailable`);
  const answer = await inClientSpan(`${method} ${title}`, headers, async () => {
    const response = await request(env.urls[upstream] + path, { method, headers, body: payload, headersTimeout: CALL_TIMEOUT_MS, bodyTimeout: CALL_TIMEOUT_MS });
    const text = await response.body.text();
    return { status: response.statusCode, text };
  }).catch((error: unknown) => {
    throw Object.assign(unavailable, { cause: error });
  });
  if (answer.status === 204) return undefined as T;
  if (answer.status >= 200 && answer.status < 300) {
    try {
      return JSON.parse(answer.text) as T;
    } catch (error) {
      throw Object.assign(unavailable, { cause: error });
    }
  }
  const meaning = call.on?.[answer.status];
  if (meaning) return meaning();
  throw unavailable;
}

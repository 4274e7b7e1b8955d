import { setTimeout as sleep } from 'node:timers/promises';
import type { TadaDocumentNode } from 'gql.tada';
import { print } from 'graphql';
import { createClient, NetworkError } from 'graphql-sse';

export interface GraphQLFailure {
  readonly message: string;
  readonly extensions: { readonly code: string; readonly requestId?: string };
}

/**
 * Thrown when the gateway (or something in front of it) refuses a request or answers with errors: the
 * contract's code says what to do, `retryAfterSeconds` when to try again (429, 503).
 */
export class GatewayGraphQLError extends Error {
  constructor(
    readonly errors: readonly GraphQLFailure[],
    readonly status: number,
    readonly retryAfterSeconds?: number,
  ) {
    super(errors.map((error) => `${error.extensions.code}: ${error.message}`).join('; ') || `HTTP ${status}`);
    this.name = 'GatewayGraphQLError';
  }

  get code(): string | undefined {
    return this.errors[0]?.extensions.code;
  }

  get requestId(): string | undefined {
    return this.errors[0]?.extensions.requestId;
  }
}

/** An RFC 9457 problem, as the gateway's REST face (or a proxy in front of /graphql) answers. */
interface Problem {
  readonly title?: string;
  readonly detail?: string;
  readonly code?: string;
  readonly requestId?: string;
}

/** The errors of an answer that is not GraphQL's: a problem document, or whatever else came back. */
async function failuresOf(response: Response): Promise<GraphQLFailure[]> {
  const type = response.headers.get('content-type') ?? '';
  if (type.startsWith('application/problem+json')) {
    const problem = (await response.json()) as Problem;
    return [{ message: problem.detail ?? problem.title ?? response.statusText, extensions: { code: problem.code ?? `HTTP_${response.status}`, ...(problem.requestId ? { requestId: problem.requestId } : {}) } }];
  }
  await response.body?.cancel();
  return [{ message: response.statusText || `HTTP ${response.status}`, extensions: { code: `HTTP_${response.status}` } }];
}

/** Retry-After in seconds, when the answer has one. */
function retryAfterOf(response: Response): number | undefined {
  const retryAfter = Number(response.headers.get('retry-after'));
  return Number.isFinite(retryAfter) && retryAfter > 0 ? retryAfter : undefined;
}

/** A failed answer as GatewayGraphQLError: its GraphQL errors, its problem, or its bare status. */
async function errorOf(response: Response): Promise<GatewayGraphQLError> {
  const type = response.headers.get('content-type') ?? '';
  const errors = /^application\/(graphql-response\+)?json\b/.test(type) ? (((await response.json()) as { errors?: GraphQLFailure[] }).errors ?? []) : await failuresOf(response);
  return new GatewayGraphQLError(errors, response.status, retryAfterOf(response));
}

/** The gateway's base URL by the gateway's own convention: GATEWAY_URL, else HOST and PORT (127.0.0.1:4000). */
export function gatewayUrl(env: NodeJS.ProcessEnv = process.env): string {
  if (env.GATEWAY_URL) return env.GATEWAY_URL.replace(/\/+$/, '');
  const host = !env.HOST || env.HOST === '0.0.0.0' ? '127.0.0.1' : env.HOST;
  return `http://${host}:${env.PORT ?? '4000'}`;
}

/** A minimal typed client for the gateway's /graphql: the result type comes from the document. */
export function createTvClient(baseUrl: string, getToken: () => string | undefined = () => undefined) {
  return async function request<Result, Variables>(document: TadaDocumentNode<Result, Variables>, variables?: Variables): Promise<Result> {
    const token = getToken();
    const response = await fetch(`${baseUrl}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/graphql-response+json, application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
      body: JSON.stringify({ query: print(document), variables }),
    });
    const retryAfterSeconds = retryAfterOf(response);
    const type = response.headers.get('content-type') ?? '';
    if (!/^application\/(graphql-response\+)?json\b/.test(type)) throw new GatewayGraphQLError(await failuresOf(response), response.status, retryAfterSeconds);
    const body = (await response.json()) as { data?: Result | null; errors?: GraphQLFailure[] };
    if (body.errors?.length || !body.data) throw new GatewayGraphQLError(body.errors ?? [], response.status, retryAfterSeconds);
    return body.data;
  };
}

export interface SubscriptionOptions {
  /** Times a dropped stream is subscribed again in a row (graphql-sse's `retryAttempts`); 0: never. */
  readonly retryAttempts?: number;
}

/**
 * Typed subscriptions over GraphQL over SSE, with graphql-sse's client in distinct connections mode: each
 * subscription is one POST to /graphql with `Accept: text/event-stream` (plain HTTP, through any proxy),
 * its token read at every (re)connection. The generator yields each result's data. A stream that drops
 * without completing (a network change; a gateway replica shutting down ends its streams so) is
 * subscribed again with backoff, and the gateway then sends the current state again. A refusal (a 4xx:
 * invalid, token refused, too many streams) is not retried, and it or a result with errors throws
 * GatewayGraphQLError, as `request` does. Leaving the loop (break, return, a throw) ends the stream, as
 * does `signal` (the loop then ends as if the stream completed).
 */
export function createTvSubscriptions(baseUrl: string, getToken: () => string | undefined = () => undefined, options: SubscriptionOptions = {}) {
  return async function* subscribe<Result, Variables>(document: TadaDocumentNode<Result, Variables>, variables?: Variables, signal?: AbortSignal): AsyncGenerator<Result, void, undefined> {
    if (signal?.aborted) return;
    // Ends the stream, and a wait between two attempts.
    const ended = new AbortController();
    // A 4xx answer, read as the client's error: the gateway would refuse the same request again.
    let refused: Promise<GatewayGraphQLError> | undefined;
    const client = createClient({
      url: `${baseUrl}/graphql`,
      headers: (): Record<string, string> => {
        const token = getToken();
        return token ? { authorization: `Bearer ${token}` } : {};
      },
      retryAttempts: options.retryAttempts ?? 5,
      // graphql-sse's own backoff (1 s, doubling, plus up to 3 s so that the clients of a replica that went away do not all come back at once), never after a refusal.
      retry: async (retries) => {
        if (refused) throw await refused;
        await sleep(1000 * 2 ** retries + 300 + Math.random() * 2700, undefined, { signal: ended.signal });
      },
      fetchFn: async (input: string, init: RequestInit) => {
        const response = await fetch(input, init);
        // graphql-sse reads no body of an answer that is not ok: this is the one place that sees it.
        if (response.status >= 400 && response.status < 500) refused = errorOf(response);
        return response;
      },
    });
    ended.signal.addEventListener('abort', () => client.dispose(), { once: true });
    const stop = () => ended.abort();
    signal?.addEventListener('abort', stop, { once: true });
    const results = client.iterate<Result>({ query: print(document), ...(variables ? { variables: variables as Record<string, unknown> } : {}) });
    try {
      // Disposed (`signal`), the client completes the stream: the loop ends.
      for await (const result of results) {
        if (result.errors?.length || !result.data) throw new GatewayGraphQLError((result.errors ?? []) as unknown as GraphQLFailure[], 200);
        yield result.data;
      }
    } catch (error) {
      if (refused) throw await refused;
      // Retries spent: a 5xx (a replica shutting down) is named as any other answer.
      if (error instanceof NetworkError && error.response instanceof Response) throw await errorOf(error.response);
      throw error;
    } finally {
      signal?.removeEventListener('abort', stop);
      stop();
    }
  };
}

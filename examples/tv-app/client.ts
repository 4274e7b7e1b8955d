import type { TadaDocumentNode } from 'gql.tada';
import { print } from 'graphql';

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
    const retryAfter = Number(response.headers.get('retry-after'));
    const retryAfterSeconds = Number.isFinite(retryAfter) && retryAfter > 0 ? retryAfter : undefined;
    const type = response.headers.get('content-type') ?? '';
    if (!/^application\/(graphql-response\+)?json\b/.test(type)) throw new GatewayGraphQLError(await failuresOf(response), response.status, retryAfterSeconds);
    const body = (await response.json()) as { data?: Result | null; errors?: GraphQLFailure[] };
    if (body.errors?.length || !body.data) throw new GatewayGraphQLError(body.errors ?? [], response.status, retryAfterSeconds);
    return body.data;
  };
}

import type { TadaDocumentNode } from 'gql.tada';
import { print } from 'graphql';

export interface GraphQLFailure {
  readonly message: string;
  readonly extensions: { readonly code: string; readonly requestId?: string };
}

/** Thrown when the gateway answers with errors: the contract's code says what to do. */
export class GatewayGraphQLError extends Error {
  constructor(readonly errors: readonly GraphQLFailure[]) {
    super(errors.map((error) => `${error.extensions.code}: ${error.message}`).join('; '));
    this.name = 'GatewayGraphQLError';
  }

  get code(): string | undefined {
    return this.errors[0]?.extensions.code;
  }
}

/** A minimal typed client for the gateway's /graphql: the result type comes from the document. */
export function createTvClient(baseUrl: string, getToken: () => string | undefined = () => undefined) {
  return async function request<Result, Variables>(document: TadaDocumentNode<Result, Variables>, variables?: Variables): Promise<Result> {
    const token = getToken();
    const response = await fetch(`${baseUrl}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
      body: JSON.stringify({ query: print(document), variables }),
    });
    const body = (await response.json()) as { data?: Result | null; errors?: GraphQLFailure[] };
    if (body.errors?.length || !body.data) throw new GatewayGraphQLError(body.errors ?? []);
    return body.data;
  };
}

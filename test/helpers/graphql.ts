import { expect } from 'vitest';

export interface GraphQLAnswer {
  readonly status: number;
  readonly data?: Record<string, unknown> | null;
  readonly errors?: { message: string; path?: (string | number)[]; extensions: { code: string; requestId?: string; [key: string]: unknown } }[];
  readonly text: string;
}

/** POSTs one operation to /graphql as a typed client would. */
export async function graphql(baseUrl: string, query: string, options: { token?: string; variables?: Record<string, unknown>; headers?: Record<string, string> } = {}): Promise<GraphQLAnswer> {
  const response = await fetch(`${baseUrl}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(options.token ? { authorization: `Bearer ${options.token}` } : {}), ...options.headers },
    body: JSON.stringify({ query, variables: options.variables }),
  });
  const text = await response.text();
  const body = JSON.parse(text) as Omit<GraphQLAnswer, 'status' | 'text'>;
  return { status: response.status, text, ...body };
}

/** The one error of an answer, checked to carry a code and the request id and no upstream internals. */
export function onlyError(answer: GraphQLAnswer): { message: string; code: string; path?: (string | number)[] } {
  expect(answer.errors, answer.text).toHaveLength(1);
  const [error] = answer.errors ?? [];
  expect(error?.extensions.requestId).toMatch(/^[\w.:-]+$/);
  expect(answer.text).not.toMatch(/127\.0\.0\.1|localhost|https?:\/\/(?!cdn\.tv\.example)|\bat .+:\d+:\d+|stacktrace/i);
  return { message: error?.message ?? '', code: error?.extensions.code ?? '', ...(error?.path ? { path: error.path } : {}) };
}

/** The answer's one error is `expected`, and an upstream's internals (`hidden`) show nowhere in it. */
export function expectOnlyErrorHiding(answer: GraphQLAnswer, expected: { code: string; message: string }, hidden: string): void {
  expect(onlyError(answer)).toMatchObject(expected);
  expect(answer.text).not.toContain(hidden);
}

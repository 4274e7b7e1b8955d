import { ApolloClient, CombinedGraphQLErrors, gql, HttpLink, InMemoryCache } from '@apollo/client';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { TV_APP_MANIFEST } from '../../scripts/lib/trusted-manifest.js';
import { rawGet } from '../helpers/raw-http.js';
import { useStack } from '../helpers/stack.js';

/** What Apollo Client 4's HttpLink sends. */
const APOLLO_CLIENT_ACCEPT = 'application/graphql-response+json,application/json;q=0.9';
const JSON_TYPE = 'application/json; charset=utf-8';
const GRAPHQL_RESPONSE_TYPE = 'application/graphql-response+json; charset=utf-8';

/** Accept headers a client may send, and the media type GraphQL-over-HTTP (and Apollo Server) answer each with. */
const ACCEPTS: readonly (readonly [string | undefined, string])[] = [
  [undefined, JSON_TYPE],
  ['*/*', JSON_TYPE],
  ['application/json', JSON_TYPE],
  [APOLLO_CLIENT_ACCEPT, GRAPHQL_RESPONSE_TYPE],
  ['application/graphql-response+json', GRAPHQL_RESPONSE_TYPE],
  ['application/graphql-response+json; charset=utf-8', GRAPHQL_RESPONSE_TYPE],
  ['application/json;q=0.5, application/*;q=0.9', GRAPHQL_RESPONSE_TYPE],
  // Neither type: an error answer is still one a client can read.
  ['text/plain', JSON_TYPE],
  ['application/graphql-response+json;q=0', JSON_TYPE],
];

interface Answer {
  readonly status: number;
  readonly type: string | null;
  readonly codes: unknown[];
}

async function post(url: string, body: string, headers: Record<string, string | undefined> = {}): Promise<Answer> {
  const sent = Object.fromEntries(Object.entries({ 'content-type': 'application/json', ...headers }).filter((entry): entry is [string, string] => entry[1] !== undefined));
  const response = await fetch(`${url}/graphql`, { method: 'POST', headers: sent, body });
  const parsed = (await response.json()) as { errors?: { extensions?: { code?: unknown; requestId?: unknown } }[]; data?: unknown };
  expect(parsed.data, 'an error answer for the whole request has no data').toBeUndefined();
  for (const error of parsed.errors ?? []) expect(error.extensions?.requestId).toMatch(/\S/);
  return { status: response.status, type: response.headers.get('content-type'), codes: (parsed.errors ?? []).map((error) => error.extensions?.code) };
}

const client = (url: string, headers: Record<string, string> = {}) => new ApolloClient({ link: new HttpLink({ uri: `${url}/graphql`, headers }), cache: new InMemoryCache() });

/** The error an Apollo Client 4 query fails with, as an application reads it. */
async function apolloError(apollo: ApolloClient, query: string): Promise<unknown> {
  try {
    await apollo.query({ query: gql(query), fetchPolicy: 'network-only' });
  } catch (error) {
    return error;
  }
  throw new Error(`${query} did not fail`);
}

function codesOf(error: unknown): unknown[] {
  expect(CombinedGraphQLErrors.is(error), `a GraphQL error, not ${String(error)}`).toBe(true);
  return (error as CombinedGraphQLErrors).errors.map((graphqlError) => graphqlError.extensions?.code);
}

describe('the gateway’s own GraphQL error answers, read by real clients', () => {
  const fx = useStack({ env: { RATE_LIMIT_PER_MINUTE: '0' } });

  it('Apollo Client 4 reads UNAUTHENTICATED from a refused token as a GraphQL error, and no upstream is called', async () => {
    const error = await apolloError(client(fx.gateway.url, { authorization: 'Bearer not-a-token' }), 'query Plans { plans { id } }');
    expect(codesOf(error)).toEqual(['UNAUTHENTICATED']);
    expect((error as CombinedGraphQLErrors).errors[0]?.extensions?.requestId).toMatch(/\S/);
    expect(fx.upstreams.all()).toEqual([]);
  });

  it.each(ACCEPTS)('answers a refused token, for Accept %s, as %s, with its code', async (accept, type) => {
    expect(await post(fx.gateway.url, '{"query":"{ plans { id } }"}', { accept, authorization: 'Bearer not-a-token' })).toEqual({ status: 401, type, codes: ['UNAUTHENTICATED'] });
    expect(fx.upstreams.all()).toEqual([]);
  });

  it.each(ACCEPTS)('answers a body that is not JSON, for Accept %s, as %s, like Apollo’s own 400s', async (accept, type) => {
    expect(await post(fx.gateway.url, '{"query": "{ plans', { accept })).toEqual({ status: 400, type, codes: ['BAD_USER_INPUT'] });
    // Apollo's own refusal of the same client (a document that does not parse; 406 for an Accept naming neither type), for comparison.
    expect((await post(fx.gateway.url, '{"query": "{ plans"}', { accept })).type).toBe(type);
    expect(fx.upstreams.all()).toEqual([]);
  });

  it.each(ACCEPTS)('answers a declared body over the limit, for Accept %s, as %s, before reading it', async (accept, type) => {
    const answer = await rawGet(fx.gateway.url, '/graphql', { 'content-type': 'application/json', 'content-length': String(64 * 1024 * 1024), ...(accept === undefined ? {} : { accept }) }, 'POST');
    expect(answer.status).toBe(413);
    expect(/\r\ncontent-type: ([^\r]*)\r\n/i.exec(answer.text)?.[1]).toBe(type);
    expect(answer.text).toContain('"code":"PAYLOAD_TOO_LARGE"');
  });

  it('takes an Accept header as long as a request head may be (600 made-up types), in the time of any other request', async () => {
    const accept = Array.from({ length: 600 }, (_, i) => `type${i}/sub${i};q=0.${(i % 9) + 1}`).join(',');
    expect(accept.length).toBeGreaterThan(12 * 1024);
    const started = performance.now();
    expect(await post(fx.gateway.url, '{"query":"{ plans { id } }"}', { accept, authorization: 'Bearer not-a-token' })).toEqual({ status: 401, type: JSON_TYPE, codes: ['UNAUTHENTICATED'] });
    expect(performance.now() - started, 'ms for one request').toBeLessThan(2000);
  });
});

describe('a rate-limited GraphQL client', () => {
  const fx = useStack({ env: { RATE_LIMIT_PER_MINUTE: '1' }, perTest: true });

  it('reads RATE_LIMITED with Apollo Client 4, and the 429 is in the media type it asked for', async () => {
    fx.upstreams.upstreams.rights.behaviour = (_req, res) => void res.writeHead(200, { 'content-type': 'application/json' }).end('[]');
    const apollo = client(fx.gateway.url);
    await apollo.query({ query: gql('query Plans { plans { id } }') });
    expect(codesOf(await apolloError(apollo, 'query Plans { plans { id } }'))).toEqual(['RATE_LIMITED']);
    expect(await post(fx.gateway.url, '{"query":"{ plans { id } }"}', { accept: APOLLO_CLIENT_ACCEPT })).toEqual({ status: 429, type: GRAPHQL_RESPONSE_TYPE, codes: ['RATE_LIMITED'] });
    expect(await post(fx.gateway.url, '{"query":"{ plans { id } }"}')).toEqual({ status: 429, type: JSON_TYPE, codes: ['RATE_LIMITED'] });
    expect(fx.upstreams.upstreams.rights.requests).toHaveLength(1);
  });
});

describe('TRUSTED_DOCUMENTS_MODE=require, to a client that sends its query as text', () => {
  const fx = useStack({ env: { TRUSTED_DOCUMENTS: fileURLToPath(TV_APP_MANIFEST), TRUSTED_DOCUMENTS_MODE: 'require' } });

  it('Apollo Client 4 reads PERSISTED_DOCUMENT_REQUIRED as a GraphQL error, and no upstream is called', async () => {
    expect(codesOf(await apolloError(client(fx.gateway.url), 'query Plans { plans { id } }'))).toEqual(['PERSISTED_DOCUMENT_REQUIRED']);
    expect(fx.upstreams.all()).toEqual([]);
  });

  it.each(ACCEPTS)('answers the refusals, for Accept %s, as %s', async (accept, type) => {
    expect(await post(fx.gateway.url, '{"query":"{ plans { id } }"}', { accept })).toEqual({ status: 400, type, codes: ['PERSISTED_DOCUMENT_REQUIRED'] });
    expect(await post(fx.gateway.url, '{"documentId":"sha256:0000"}', { accept })).toEqual({ status: 400, type, codes: ['PERSISTED_DOCUMENT_NOT_FOUND'] });
    expect(fx.upstreams.all()).toEqual([]);
  });
});

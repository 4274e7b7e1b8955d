import { auditServer } from 'graphql-http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SUBSCRIPTIONS_ELSEWHERE } from '../../gateway/src/graphql/cost.js';
import { useStack } from '../helpers/stack.js';
import { startGateway, type RunningGateway } from '../helpers/gateway.js';
import { expectOnlyErrorHiding, graphql, onlyError } from '../helpers/graphql.js';
import { IN_MEMORY } from '../../services/lib/environment.js';
import { startReferenceServices, type ReferenceServices } from '../../services/registry.js';
import { TEST_SECRET, userToken } from '../helpers/tokens.js';

const INTROSPECTION = '{ __schema { queryType { name } } }';

describe('GraphQL over HTTP', () => {
  let stack: ReferenceServices;
  let gateway: RunningGateway;

  beforeAll(async () => {
    stack = await startReferenceServices({ anyPorts: true, env: { DATA_DIR: IN_MEMORY } });
    gateway = await startGateway(stack.urls, { NODE_ENV: 'development' });
  });

  afterAll(async () => {
    await gateway.close();
    await stack.close();
  });

  it('passes every MUST of the graphql-http server audits', async () => {
    const results = await auditServer({ url: `${gateway.url}/graphql` });
    const failedMusts = results.filter((result) => result.status !== 'ok' && result.name.startsWith('MUST'));
    expect(failedMusts.map((result) => `${result.name}: ${result.status === 'ok' ? '' : result.reason}`)).toEqual([]);
    expect(results.filter((result) => result.name.startsWith('MUST')).length).toBeGreaterThan(10);
  });

  it('refuses a plain GET query without a preflight header (CSRF prevention), and answers it with one', async () => {
    const url = `${gateway.url}/graphql?query=${encodeURIComponent('{ plans { id } }')}`;
    const plain = await fetch(url);
    expect(plain.status).toBe(400);
    const withPreflight = await fetch(url, { headers: { 'apollo-require-preflight': 'true' } });
    expect(withPreflight.status).toBe(200);
    expect(await withPreflight.json()).toEqual({ data: { plans: [{ id: 'basic' }, { id: 'premium' }] } });
  });

  it('shows a browser GraphiQL with every asset inlined (offline), Apollo Sandbox at ?sandbox, and answers introspection in development', async () => {
    const page = await fetch(`${gateway.url}/graphql`, { headers: { accept: 'text/html' } });
    expect(page.status).toBe(200);
    expect(page.headers.get('content-encoding')).toBe('gzip');
    const html = await page.text();
    expect(html).toContain('<title>TV gateway · GraphiQL</title>');
    expect(html).not.toMatch(/<(script|link)[^>]+(src|href)="https?:/);
    const sandbox = await fetch(`${gateway.url}/graphql?sandbox`, { headers: { accept: 'text/html' } });
    expect(await sandbox.text()).toMatch(/embeddable-sandbox/i);
    const answer = await graphql(gateway.url, INTROSPECTION);
    expect(answer.data).toEqual({ __schema: { queryType: { name: 'Query' } } });
  });

  it('never shows a stack trace, even in development', async () => {
    const answer = await graphql(gateway.url, '{ nosuchfield }');
    expect(answer.status).toBe(400);
    expect(answer.text).not.toMatch(/stacktrace|\bat .+:\d+:\d+/);
    expect(answer.errors?.[0]?.extensions.code).toBe('GRAPHQL_VALIDATION_FAILED');
  });

  it('has neither Sandbox nor introspection in production, unless GRAPHQL_INTROSPECTION=true', async () => {
    const production = await startGateway(stack.urls, { NODE_ENV: 'production', JWT_SECRET_KEY: TEST_SECRET });
    const opened = await startGateway(stack.urls, { NODE_ENV: 'production', JWT_SECRET_KEY: TEST_SECRET, GRAPHQL_INTROSPECTION: 'true' });
    try {
      const page = await fetch(`${production.url}/graphql`, { headers: { accept: 'text/html' } });
      expect(await page.text()).not.toMatch(/sandbox|graphiql/i);
      expect(await (await fetch(`${production.url}/graphql?sandbox`, { headers: { accept: 'text/html' } })).text()).not.toMatch(/sandbox|graphiql/i);
      const closed = await graphql(production.url, INTROSPECTION);
      expect(closed.errors?.[0]?.message).toMatch(/introspection/i);
      expect(closed.data).toBeUndefined();
      expect(await graphql(production.url, '{ plans { id } }')).toMatchObject({ data: { plans: [{ id: 'basic' }, { id: 'premium' }] } });

      expect(await (await fetch(`${opened.url}/graphql`, { headers: { accept: 'text/html' } })).text()).toMatch(/sandbox/i);
      expect((await graphql(opened.url, INTROSPECTION)).data).toEqual({ __schema: { queryType: { name: 'Query' } } });
    } finally {
      await production.close();
      await opened.close();
    }
  });
});

describe('GraphQL when an upstream fails', () => {
  // UPSTREAM_TIMEOUT_MS: a second, which a busy machine's ordinary calls stay well within; the late upstreams are later still.
  const fx = useStack({ env: { UPSTREAM_TIMEOUT_MS: '1000' } });

  it('keeps the other fields when one service fails: its own field is null with its error (partial result)', async () => {
    fx.upstreams.upstreams.livetv.behaviour = (_req, res) => void res.writeHead(503).end();
    fx.upstreams.upstreams.rights.behaviour = (_req, res) => void res.writeHead(200, { 'content-type': 'application/json' }).end('[{"id":"basic","name":"Basic"}]');
    const answer = await graphql(fx.gateway.url, '{ plans { id } channels { name } }');
    expect(answer.status).toBe(200);
    expect(answer.data).toEqual({ plans: [{ id: 'basic' }], channels: null });
    expect(onlyError(answer)).toMatchObject({ code: 'UPSTREAM_UNAVAILABLE', path: ['channels'] });
  });

  it('answers UPSTREAM_TIMEOUT when the upstream is too slow', async () => {
    fx.upstreams.upstreams.rights.behaviour = (_req, res) => void setTimeout(() => res.writeHead(200, { 'content-type': 'application/json' }).end('[]'), 3000);
    const answer = await graphql(fx.gateway.url, '{ plans { id } }');
    expect(onlyError(answer)).toEqual({ code: 'UPSTREAM_TIMEOUT', message: 'The rights management service did not answer in time', path: ['plans'] });
  });

  it('answers UPSTREAM_UNAVAILABLE, without the error text, when the upstream breaks off or fails', async () => {
    fx.upstreams.upstreams.livetv.behaviour = (_req, res) => void res.destroy();
    expect(onlyError(await graphql(fx.gateway.url, '{ channels { id } }'))).toMatchObject({ code: 'UPSTREAM_UNAVAILABLE', message: 'The live TV service is unavailable' });
    fx.upstreams.upstreams.livetv.behaviour = (_req, res) => void res.writeHead(500, { 'content-type': 'application/json' }).end('{"detail":"KeyError at /srv/app.py line 12"}');
    const failed = await graphql(fx.gateway.url, '{ channels { id } }');
    expect(onlyError(failed)).toMatchObject({ code: 'UPSTREAM_UNAVAILABLE', message: 'The live TV service failed to handle the request' });
    expect(failed.text).not.toContain('app.py');
  });

  it('answers INTERNAL_SERVER_ERROR, with a bare message, when an upstream answers something unusable', async () => {
    fx.upstreams.upstreams.rights.behaviour = (_req, res) => void res.writeHead(200, { 'content-type': 'application/json' }).end('{"secret": "db01.internal", "not": "a list"}');
    expectOnlyErrorHiding(await graphql(fx.gateway.url, '{ plans { id } }'), { code: 'INTERNAL_SERVER_ERROR', message: 'The gateway failed to handle this request' }, 'db01');
  });

  it('sends the caller identity and request id to the upstream, and removes spoofed identity', async () => {
    fx.upstreams.upstreams.users.behaviour = (_req, res) =>
      void res.writeHead(200, { 'content-type': 'application/json' }).end('{"id":"42","username":"zed","roles":["user"]}');
    const token = await userToken('42');
    const answer = await graphql(fx.gateway.url, '{ me { id username } }', { token, headers: { 'x-request-id': 'gql-1', 'x-user-id': '1', 'x-user-roles': 'admin' } });
    expect(answer.data).toEqual({ me: { id: '42', username: 'zed' } });
    const headers = fx.upstreams.upstreams.users.requests[0]?.headers ?? {};
    expect(headers['x-user-id']).toBe('42');
    expect(headers['x-user-roles']).toBe('user');
    expect(headers['x-request-id']).toBe('gql-1');
    expect(headers.authorization).toBe(`Bearer ${token}`);
  });

  it('sends no identity headers for an anonymous caller', async () => {
    fx.upstreams.upstreams.rights.behaviour = (_req, res) => void res.writeHead(200, { 'content-type': 'application/json' }).end('[]');
    await graphql(fx.gateway.url, '{ plans { id } }', { headers: { 'x-user-id': '1' } });
    const headers = fx.upstreams.upstreams.rights.requests[0]?.headers ?? {};
    expect(headers['x-user-id']).toBeUndefined();
    expect(headers['x-user-roles']).toBeUndefined();
    expect(headers.authorization).toBeUndefined();
  });
});

describe('client errors on /graphql, by the GraphQL-over-HTTP spec', () => {
  const fx = useStack({});
  const post = (body: string, headers: Record<string, string> = {}) => fetch(`${fx.gateway.url}/graphql`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body });
  /** Status, and each error's code, message and whether it carries the request id. */
  const shapeOf = async (response: Response) => {
    const body = (await response.json()) as { errors?: { message: string; extensions?: { code?: string; requestId?: string } }[]; data?: unknown };
    expect(body.data).toBeUndefined();
    return { status: response.status, errors: (body.errors ?? []).map((error) => ({ code: error.extensions?.code, message: error.message, requestId: typeof error.extensions?.requestId === 'string' && error.extensions.requestId === response.headers.get('x-request-id') })) };
  };

  it('answers a query that does not parse with 400 GRAPHQL_PARSE_FAILED and the request id', async () => {
    expect(await shapeOf(await post(JSON.stringify({ query: '{ plans { id }' })))).toEqual({
      status: 400,
      errors: [{ code: 'GRAPHQL_PARSE_FAILED', message: expect.stringMatching(/^Syntax Error: Expected Name, found <EOF>/), requestId: true }],
    });
    expect(fx.upstreams.all()).toEqual([]);
  });

  it('stops a query over 1000 tokens in the parser: 400 GRAPHQL_PARSE_FAILED, no upstream call', async () => {
    const query = `{ ${Array.from({ length: 400 }, (_, i) => `p${i}: plans { id }`).join(' ')} }`;
    expect(await shapeOf(await post(JSON.stringify({ query })))).toEqual({
      status: 400,
      errors: [{ code: 'GRAPHQL_PARSE_FAILED', message: expect.stringMatching(/Document contains more th\w+ 1000 tokens/), requestId: true }],
    });
    expect(fx.upstreams.all()).toEqual([]);
  });

  it('refuses a subscription with 400 and says what to send instead', async () => {
    expect(await shapeOf(await post(JSON.stringify({ query: 'subscription { nowPlaying(channelIds: ["c1"]) { program { id } } }' })))).toEqual({
      status: 400,
      errors: [{ code: 'GRAPHQL_VALIDATION_FAILED', message: SUBSCRIPTIONS_ELSEWHERE, requestId: true }],
    });
    expect(fx.upstreams.all()).toEqual([]);
  });

  it.each([
    ['a GET without a preflight header (CSRF prevention)', () => fetch(`${fx.gateway.url}/graphql?query=${encodeURIComponent('{ plans { id } }')}`), 'BAD_REQUEST', 400],
    ['a batch', () => post(JSON.stringify([{ query: '{ plans { id } }' }])), 'BAD_REQUEST', 400],
    ['a POST without a body', () => post(''), 'BAD_REQUEST', 400],
    ['a body that is not JSON', () => post('{"query":'), 'BAD_USER_INPUT', 400],
  ] as const)('answers %s GraphQL-shaped, with a listed code and the request id, and calls nothing', async (_name, send, code, status) => {
    const answer = await shapeOf(await send());
    expect(answer.status).toBe(status);
    expect(answer.errors).toEqual([{ code, message: expect.any(String), requestId: true }]);
    expect(fx.upstreams.all()).toEqual([]);
  });
});

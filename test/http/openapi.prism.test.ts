import { createRequire } from 'node:module';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnProcess, waitUntilReady, type SpawnedProcess } from '../../scripts/lib/processes.js';
import { useFixture } from '../helpers/fixture.js';
import { freePortBlock } from '../helpers/ports.js';
import { useStack } from '../helpers/stack.js';
import { waitingFor, within } from '../helpers/wait.js';

const PRISM = createRequire(import.meta.url).resolve('@stoplight/prism-cli/dist/index.js');
const PRISM_START_MS = 50_000;

interface Violation {
  readonly location: string[];
  readonly severity: string;
  readonly message: string;
}

interface Prism {
  readonly url: string;
  readonly spawned: SpawnedProcess;
  /** Everything Prism printed so far. */
  printed(): string;
}

/**
 * A Prism proxy in front of the gateway, reading the document the gateway serves. It forwards every
 * request (without `--errors`: a request the document refuses — no token, a bad value — still reaches
 * the gateway, whose answer is what is checked) and reports what breaks the document in `sl-violations`.
 */
async function startPrism(gatewayUrl: string): Promise<Prism> {
  const port = await freePortBlock(1);
  const url = `http://127.0.0.1:${port}`;
  const spawned = spawnProcess({
    label: 'prism proxy',
    args: [PRISM, 'proxy', `${gatewayUrl}/openapi.json`, gatewayUrl, '--host', '127.0.0.1', '--port', String(port), '--multiprocess=false'],
    env: { PATH: process.env.PATH, NODE_ENV: 'test' },
  });
  let printed = '';
  spawned.child.stdout?.on('data', (chunk: Buffer) => (printed += chunk.toString()));
  spawned.child.stderr?.on('data', (chunk: Buffer) => (printed += chunk.toString()));
  try {
    // /health goes through Prism to the gateway: it answers once Prism has read the document.
    await waitUntilReady({ label: 'prism proxy', url: `${url}/health`, child: spawned.child, output: () => printed, signal: waitingFor(`${url}/health to answer through Prism`, PRISM_START_MS) });
  } catch (error) {
    spawned.child.kill('SIGKILL');
    throw error;
  }
  return { url, spawned, printed: () => printed };
}

type Caller = 'alice' | 'bob' | 'admin' | 'dana' | 'forged';

interface Call {
  readonly as?: Caller;
  readonly json?: unknown;
  readonly body?: string;
  readonly headers?: Record<string, string>;
  /** The request breaks the document on purpose (no token, a value out of range): Prism may say so. */
  readonly invalid?: boolean;
}

interface Checked {
  readonly status: number;
  readonly type: string | null;
  readonly body: unknown;
}

describe('the OpenAPI document, checked by a Prism proxy in front of the gateway and the reference services', () => {
  // Three account creations an hour from one address: the fourth is the gateway's 429.
  const fx = useStack({ upstreams: 'reference', env: { REGISTRATIONS_PER_HOUR: '3' } });
  const prism = useFixture(
    () => startPrism(fx.gateway.url),
    async (started) => void (await within('the Prism proxy to exit after SIGTERM', started.spawned.stop())),
  );
  const tokens: Partial<Record<Caller, string>> = { forged: 'not-a-token' };
  /** `METHOD /template` of every operation called through Prism. */
  const called = new Set<string>();

  /** Sends one request through Prism: its answer must break nothing in the document. */
  async function call(method: string, path: string, options: Call = {}): Promise<Checked> {
    const headers: Record<string, string> = { ...options.headers };
    if (options.as) headers.authorization = `Bearer ${tokens[options.as] ?? ''}`;
    let body = options.body;
    if (options.json !== undefined) {
      body = JSON.stringify(options.json);
      headers['content-type'] = 'application/json';
    }
    const response = await fetch(`${prism.url}${path}`, { method, headers, body });
    const text = await response.text();
    const where = `${method} ${path} -> ${response.status}`;
    const violations = JSON.parse(response.headers.get('sl-violations') ?? '[]') as Violation[];
    expect(
      violations.filter((violation) => violation.location[0] !== 'request'),
      `${where}: the answer as documented`,
    ).toEqual([]);
    if (!options.invalid) expect(violations, `${where}: the request as documented`).toEqual([]);
    called.add(`${method} ${operationOf(path)}`);
    const type = response.headers.get('content-type');
    return { status: response.status, type, body: /json/.test(type ?? '') && text !== '' ? JSON.parse(text) : text };
  }

  /** The document's path template a request path is one of. */
  const templates: string[] = [];
  function operationOf(path: string): string {
    const bare = path.split('?')[0] ?? path;
    return templates.find((template) => new RegExp(`^${template.replace(/\{[^}]+\}/g, '[^/]+')}$`).test(bare)) ?? bare;
  }

  // Every test starts on the document the gateway serves, with the demo users logged in through it.
  beforeAll(async () => {
    const document = (await (await fetch(`${fx.gateway.url}/openapi.json`)).json()) as { paths: Record<string, unknown> };
    templates.push(...Object.keys(document.paths).sort((a, b) => b.length - a.length));
    for (const user of ['alice', 'bob', 'admin'] as const) {
      const answer = await call('POST', '/auth/login', { json: { username: user, password: `${user}-password` } });
      expect(answer.status).toBe(200);
      tokens[user] = (answer.body as { access_token: string }).access_token;
    }
  });

  // Whatever the order they ran in, the tests together called every operation the document lists, and
  // Prism logged no violation of an answer (before the Prism fixture stops: after hooks run last first).
  afterAll(async () => {
    const document = (await (await fetch(`${fx.gateway.url}/openapi.json`)).json()) as { paths: Record<string, Record<string, unknown>> };
    const listed = Object.entries(document.paths).flatMap(([path, item]) => Object.keys(item).filter((key) => key !== 'parameters').map((method) => `${method.toUpperCase()} ${path}`));
    expect(listed.filter((operation) => !called.has(operation)).sort(), 'operations never called').toEqual([]);
    expect(prism.printed(), 'Prism’s log').not.toMatch(/Violation: response/);
    expect(prism.printed(), 'Prism’s log').toMatch(/Violation: request/);
  });

  it('matches the authentication service’s answers: tokens, 401, 409, 422 with errors[], and the 429 of registrations', async () => {
    const wrong = await call('POST', '/auth/login', { json: { username: 'alice', password: 'wrong-password' } });
    expect(wrong).toMatchObject({ status: 401, type: 'application/problem+json', body: { code: 'UNAUTHENTICATED' } });
    const invalid = await call('POST', '/auth/login', { json: { username: 'alice' }, invalid: true });
    expect(invalid).toMatchObject({ status: 422, type: 'application/problem+json', body: { code: 'BAD_USER_INPUT', errors: [{ loc: ['body', 'password'] }] } });
    const login = await call('POST', '/auth/login', { json: { username: 'bob', password: 'bob-password' } });
    const refreshed = await call('POST', '/auth/refresh', { json: { refresh_token: (login.body as { refresh_token: string }).refresh_token } });
    expect(refreshed.status).toBe(200);
    expect((await call('POST', '/auth/refresh', { json: { refresh_token: 'never-issued' } })).status).toBe(401);
    expect((await call('POST', '/auth/refresh', { json: {}, invalid: true })).status).toBe(422);

    const carol = { username: 'carol', password: 'carol-password', email: 'carol@example.com' };
    expect((await call('POST', '/auth/register', { json: carol })).status).toBe(201);
    expect(await call('POST', '/auth/register', { json: carol })).toMatchObject({ status: 409, body: { code: 'BAD_USER_INPUT' } });
    const refused = await call('POST', '/auth/register', { json: { username: 'x', password: 'short', email: 'not-an-email' }, invalid: true });
    expect(refused).toMatchObject({ status: 422, body: { detail: 'Request validation failed' } });
    expect((refused.body as { errors: unknown[] }).errors).toHaveLength(3);
    const limited = await call('POST', '/auth/register', { json: { username: 'dave', password: 'dave-password', email: 'dave@example.com' } });
    expect(limited).toMatchObject({ status: 429, type: 'application/problem+json', body: { code: 'RATE_LIMITED' } });
  });

  it('matches the gateway’s own refusals: no token, a forged one, a user on an admin route', async () => {
    expect(await call('GET', '/users/me', { invalid: true })).toMatchObject({ status: 401, body: { code: 'UNAUTHENTICATED' } });
    expect(await call('GET', '/users/me', { as: 'forged' })).toMatchObject({ status: 401, body: { code: 'UNAUTHENTICATED' } });
    expect(await call('GET', '/search/global?q=news', { as: 'forged' })).toMatchObject({ status: 401, body: { code: 'UNAUTHENTICATED' } });
    expect(await call('GET', '/admin/users', { as: 'bob' })).toMatchObject({ status: 403, body: { code: 'FORBIDDEN' } });
    // A path the gateway cannot normalise safely: its 400, the `default` problem.
    expect(await call('GET', '/ondemand/movies/m1%2F..%2Fm2', { as: 'alice' })).toMatchObject({ status: 400, type: 'application/problem+json', body: { code: 'BAD_USER_INPUT' } });
  });

  it('matches user management’s answers', async () => {
    expect((await call('GET', '/users/me', { as: 'alice' })).status).toBe(200);
    expect((await call('PATCH', '/users/me', { as: 'bob', json: { email: 'bob@tv.example' } })).status).toBe(200);
    expect((await call('PATCH', '/users/me', { as: 'bob', json: { email: 'nope' }, invalid: true })).status).toBe(422);
    expect((await call('GET', '/users/batch?ids=1', { as: 'alice' })).status).toBe(200);
    expect((await call('GET', '/users/batch?ids=1,2', { as: 'alice' })).status).toBe(403);
    expect((await call('GET', '/users/batch', { as: 'admin', invalid: true })).status).toBe(422);
    expect((await call('GET', '/admin/users?limit=2', { as: 'admin' })).status).toBe(200);
    expect((await call('GET', '/admin/users?limit=0', { as: 'admin', invalid: true })).status).toBe(422);
    expect((await call('PUT', '/admin/users/2/roles', { as: 'admin', json: { roles: ['user'] } })).status).toBe(200);
    expect((await call('PUT', '/admin/users/999/roles', { as: 'admin', json: { roles: [] } })).status).toBe(404);
    expect((await call('PUT', '/admin/users/2/roles', { as: 'admin', json: { roles: 'admin' }, invalid: true })).status).toBe(422);
  });

  it('matches on-demand’s answers', async () => {
    expect((await call('GET', '/ondemand/movies?limit=2', { as: 'alice' })).status).toBe(200);
    expect((await call('GET', '/ondemand/movies?limit=101', { as: 'alice', invalid: true })).status).toBe(422);
    expect((await call('GET', '/ondemand/movies/batch?ids=m1,m2', { as: 'alice' })).status).toBe(200);
    expect((await call('GET', '/ondemand/movies/batch', { as: 'alice', invalid: true })).status).toBe(422);
    expect((await call('GET', '/ondemand/movies/m2', { as: 'alice' })).status).toBe(200);
    expect((await call('GET', '/ondemand/movies/nope', { as: 'alice' })).status).toBe(404);
    expect((await call('GET', '/play/ondemand/m2', { as: 'alice' })).status).toBe(200);
    expect((await call('GET', '/play/ondemand/m2', { as: 'bob' })).status).toBe(403);
    expect((await call('GET', '/play/ondemand/nope', { as: 'alice' })).status).toBe(404);
    const input = { title: 'Gateway: The Movie', year: 2026, genres: ['documentary'], durationMinutes: 90, free: false };
    expect((await call('POST', '/admin/ondemand/movies', { as: 'admin', json: { title: '' }, invalid: true })).status).toBe(422);
    const created = await call('POST', '/admin/ondemand/movies', { as: 'admin', json: input });
    expect(created.status).toBe(201);
    const id = (created.body as { id: string }).id;
    expect((await call('PUT', `/admin/ondemand/movies/${id}`, { as: 'admin', json: { ...input, free: true } })).status).toBe(200);
    expect((await call('PUT', '/admin/ondemand/movies/nope', { as: 'admin', json: input })).status).toBe(404);
    expect((await call('PUT', `/admin/ondemand/movies/${id}`, { as: 'admin', json: { ...input, year: 'soon' }, invalid: true })).status).toBe(422);
    expect((await call('DELETE', `/admin/ondemand/movies/${id}`, { as: 'admin' })).status).toBe(204);
    expect((await call('DELETE', `/admin/ondemand/movies/${id}`, { as: 'admin' })).status).toBe(404);
  });

  it('matches live TV’s answers', async () => {
    expect((await call('GET', '/livetv/channels', { as: 'bob' })).status).toBe(200);
    expect((await call('GET', '/livetv/channels/batch?ids=c1,c2', { as: 'bob' })).status).toBe(200);
    expect((await call('GET', '/livetv/channels/batch', { as: 'bob', invalid: true })).status).toBe(422);
    expect((await call('GET', '/livetv/channels/c2', { as: 'bob' })).status).toBe(200);
    expect((await call('GET', '/livetv/channels/nope', { as: 'bob' })).status).toBe(404);
    expect((await call('GET', '/livetv/channels/c1/schedule', { as: 'bob' })).status).toBe(200);
    expect((await call('GET', '/livetv/channels/nope/schedule', { as: 'bob' })).status).toBe(404);
    expect((await call('GET', '/livetv/now-playing?channelIds=c1,c2', { as: 'bob' })).status).toBe(200);
    expect((await call('GET', '/livetv/now-playing', { as: 'bob', invalid: true })).status).toBe(422);
    expect((await call('GET', '/livetv/schedules?channelIds=c1', { as: 'bob' })).status).toBe(200);
    expect((await call('GET', '/livetv/schedules', { as: 'bob', invalid: true })).status).toBe(422);
    expect((await call('GET', '/play/live/c2', { as: 'alice' })).status).toBe(200);
    expect((await call('GET', '/play/live/c2', { as: 'bob' })).status).toBe(403);
    expect((await call('GET', '/play/live/nope', { as: 'alice' })).status).toBe(404);
    const input = { name: 'Gateway TV', number: 901, free: true };
    expect((await call('POST', '/admin/livetv/channels', { as: 'admin', json: { ...input, number: 101 } })).status).toBe(409);
    expect((await call('POST', '/admin/livetv/channels', { as: 'admin', json: { name: 'x' }, invalid: true })).status).toBe(422);
    const created = await call('POST', '/admin/livetv/channels', { as: 'admin', json: input });
    expect(created.status).toBe(201);
    const id = (created.body as { id: string }).id;
    expect((await call('PUT', `/admin/livetv/channels/${id}`, { as: 'admin', json: { ...input, name: 'Gateway TV 2' } })).status).toBe(200);
    expect((await call('PUT', `/admin/livetv/channels/${id}`, { as: 'admin', json: { ...input, number: 102 } })).status).toBe(409);
    expect((await call('PUT', `/admin/livetv/channels/${id}`, { as: 'admin', json: { ...input, number: 0 }, invalid: true })).status).toBe(422);
    expect((await call('PUT', '/admin/livetv/channels/nope', { as: 'admin', json: input })).status).toBe(404);
    expect((await call('DELETE', `/admin/livetv/channels/${id}`, { as: 'admin' })).status).toBe(204);
    expect((await call('DELETE', `/admin/livetv/channels/${id}`, { as: 'admin' })).status).toBe(404);
  });

  it('matches rights management’s and search’s answers', async () => {
    expect((await call('GET', '/subscriptions/plans', { as: 'bob' })).status).toBe(200);
    expect((await call('GET', '/subscriptions/me', { as: 'alice' })).status).toBe(200);
    expect((await call('GET', '/subscriptions/me', { as: 'bob' })).status).toBe(404);
    expect((await call('GET', '/subscriptions/batch?userIds=1,2,3', { as: 'admin' })).status).toBe(200);
    expect((await call('GET', '/subscriptions/batch?userIds=1', { as: 'bob' })).status).toBe(403);
    expect((await call('GET', '/subscriptions/batch', { as: 'admin', invalid: true })).status).toBe(422);
    expect((await call('GET', '/subscriptions/entitlements?contentIds=movie:m1,channel:c2', { as: 'bob' })).status).toBe(200);
    expect((await call('GET', '/subscriptions/entitlements?contentIds=film:m1', { as: 'bob', invalid: true })).status).toBe(422);
    expect((await call('POST', '/subscriptions', { as: 'bob', json: { planId: 'gold' } })).status).toBe(404);
    expect((await call('POST', '/subscriptions', { as: 'bob', json: {}, invalid: true })).status).toBe(422);
    // A subscriber of this test's own (bob subscribed would play what on-demand's test says he may not),
    // registered at the service itself (the gateway's registration limit is the authentication test's).
    const dana = { username: 'dana', password: 'dana-password', email: 'dana@example.com' };
    const registered = await fetch(`${fx.services.urls.auth}/auth/register`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(dana) });
    expect(registered.status).toBe(201);
    tokens.dana = ((await call('POST', '/auth/login', { json: { username: dana.username, password: dana.password } })).body as { access_token: string }).access_token;
    expect((await call('POST', '/subscriptions', { as: 'dana', json: { planId: 'basic' } })).status).toBe(201);
    expect((await call('POST', '/admin/rights/entitlements', { as: 'admin', json: { userId: '2', contentId: 'm2' }, invalid: true })).status).toBe(422);
    const grant = await call('POST', '/admin/rights/entitlements', { as: 'admin', json: { userId: '2', contentId: 'movie:m2' } });
    expect(grant.status).toBe(201);
    expect((await call('GET', '/admin/rights/entitlements?userId=2', { as: 'admin' })).status).toBe(200);
    expect((await call('GET', '/admin/rights/entitlements?userId=', { as: 'admin', invalid: true })).status).toBe(422);
    const id = (grant.body as { id: string }).id;
    expect((await call('DELETE', `/admin/rights/entitlements/${id}`, { as: 'admin' })).status).toBe(204);
    expect((await call('DELETE', `/admin/rights/entitlements/${id}`, { as: 'admin' })).status).toBe(404);

    expect((await call('GET', '/search/global?q=news')).status).toBe(200);
    expect((await call('GET', '/search/global?q=news', { as: 'alice' })).status).toBe(200);
    expect((await call('GET', '/search/global', { invalid: true })).status).toBe(422);
  });

  it('matches the gateway’s own endpoints', async () => {
    for (const path of ['/', '/health', '/ready', '/metrics', '/openapi.json', '/docs', '/docs/swagger-ui.css', '/docs/swagger-ui-bundle.js']) expect((await call('GET', path)).status, path).toBe(200);
  });

  it('matches /graphql: results, field errors and whole-request errors, in both media types', async () => {
    const apollo = { accept: 'application/graphql-response+json,application/json;q=0.9' };
    expect(await call('POST', '/graphql', { json: { query: '{ plans { id } }' } })).toMatchObject({ status: 200, type: 'application/json; charset=utf-8' });
    expect(await call('POST', '/graphql', { json: { query: '{ plans { id } }' }, headers: apollo })).toMatchObject({ status: 200, type: 'application/graphql-response+json; charset=utf-8' });
    expect(await call('POST', '/graphql', { json: { query: '{ me { id } }' } })).toMatchObject({ status: 200, body: { data: { me: null }, errors: [{ extensions: { code: 'UNAUTHENTICATED' } }] } });
    expect(await call('GET', `/graphql?query=${encodeURIComponent('{ plans { id } }')}`, { headers: { 'apollo-require-preflight': 'true' } })).toMatchObject({ status: 200 });
    expect(await call('POST', '/graphql', { json: { query: '{ plans { id } }' }, as: 'forged', headers: apollo })).toMatchObject({ status: 401, body: { errors: [{ extensions: { code: 'UNAUTHENTICATED' } }] } });
    expect(await call('POST', '/graphql', { json: { query: '{ plans' } })).toMatchObject({ status: 400, body: { errors: [{ extensions: { code: 'GRAPHQL_PARSE_FAILED' } }] } });
  });
});

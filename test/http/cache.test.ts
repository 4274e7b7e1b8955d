import type { IncomingMessage, ServerResponse } from 'node:http';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it, onTestFinished, vi } from 'vitest';
import { IN_MEMORY } from '../../services/lib/environment.js';
import { startReferenceServices, type ReferenceServices } from '../../services/registry.js';
import type { RunningGateway } from '../helpers/gateway.js';
import { useStack } from '../helpers/stack.js';
import { graphql } from '../helpers/graphql.js';
import { sample } from '../helpers/metrics.js';
import { eventually } from '../helpers/wait.js';
import { adminToken, signToken, userToken } from '../helpers/tokens.js';

/** An upstream answer naming who asked (X-User-ID), with the given Cache-Control and extra headers. */
function answering(cacheControl: string, extra: Record<string, string> = {}, status = 200) {
  return (req: IncomingMessage, res: ServerResponse) => {
    const body = JSON.stringify({ id: 'm1', title: `for ${String(req.headers['x-user-id'] ?? 'anyone')}`, genres: [], free: true });
    res.writeHead(status, { 'content-type': 'application/json', 'cache-control': cacheControl, ...extra }).end(body);
  };
}

describe('the shared cache of upstream answers (RFC 9111) and coalescing', () => {
  // The second gateway keeps no cache.
  const fx = useStack({ gateways: [{}, { UPSTREAM_CACHE_MAX_BYTES: '0' }] });
  let alice: string;
  let bob: string;
  beforeAll(async () => {
    [alice, bob] = await Promise.all([userToken('1'), userToken('2')]);
  });

  const get = async (path: string, token: string, on: RunningGateway = fx.gateway) => {
    const response = await request(`${on.url}${path}`, { headers: { authorization: `Bearer ${token}` } });
    return { status: response.statusCode, headers: response.headers, body: (await response.body.json()) as { title: string } };
  };
  const calls = () => fx.upstreams.upstreams.ondemand.requests.length;

  it('answers a public answer from the cache, to any user, with its Age (private: it was asked with a token), and counts the hit', async () => {
    fx.upstreams.upstreams.ondemand.behaviour = answering('public, max-age=60');
    const first = await get('/ondemand/movies/m1?cache=public', alice);
    const second = await get('/ondemand/movies/m1?cache=public', bob);
    expect(calls()).toBe(1);
    expect(second.body).toEqual(first.body);
    expect(second.headers['cache-control']).toBe('private, max-age=60');
    // A browser shared by alice and bob keeps each one's answer apart.
    expect(String(second.headers.vary)).toMatch(/\bauthorization\b/i);
    expect(Number(second.headers.age)).toBeGreaterThanOrEqual(0);
    const metrics = await (await fetch(`${fx.gateway.url}/metrics`)).text();
    expect(sample(metrics, 'gateway_upstream_cache_lookups_total', { service: 'ondemand', result: 'hit' })).toBeGreaterThanOrEqual(1);
  });

  it('never serves private data to another user, nor stores it at all', async () => {
    fx.upstreams.upstreams.ondemand.behaviour = answering('private, max-age=60');
    expect((await get('/ondemand/movies/m1?cache=private', alice)).body.title).toBe('for 1');
    expect((await get('/ondemand/movies/m1?cache=private', bob)).body.title).toBe('for 2');
    expect((await get('/ondemand/movies/m1?cache=private', alice)).body.title).toBe('for 1');
    expect(calls()).toBe(3);
  });

  it('does not store an answer to an authenticated request unless it says public', async () => {
    fx.upstreams.upstreams.ondemand.behaviour = answering('max-age=60');
    expect((await get('/ondemand/movies/m1?cache=implicit', alice)).body.title).toBe('for 1');
    expect((await get('/ondemand/movies/m1?cache=implicit', bob)).body.title).toBe('for 2');
    expect(calls()).toBe(2);
  });

  it('stores only successes: an error, even marked public, is asked again', async () => {
    fx.upstreams.upstreams.ondemand.behaviour = answering('public, max-age=60', {}, 404);
    expect((await get('/ondemand/movies/m1?cache=missing', alice)).status).toBe(404);
    expect((await get('/ondemand/movies/m1?cache=missing', alice)).status).toBe(404);
    expect(calls()).toBe(2);
  });

  it('honours expiry: an answer already as old as its max-age is not reused, a stored one expires', async () => {
    fx.upstreams.upstreams.ondemand.behaviour = answering('public, max-age=60', { age: '60' });
    await get('/ondemand/movies/m1?cache=aged', alice);
    await get('/ondemand/movies/m1?cache=aged', alice);
    expect(calls()).toBe(2);

    fx.upstreams.reset();
    fx.upstreams.upstreams.ondemand.behaviour = answering('public, max-age=1');
    // A second of freshness: undici's store reads Date.now, which stands still until the test moves it.
    vi.useFakeTimers({ toFake: ['Date'] });
    onTestFinished(() => void vi.useRealTimers());
    await get('/ondemand/movies/m1?cache=short', alice);
    await get('/ondemand/movies/m1?cache=short', bob);
    expect(calls()).toBe(1);
    vi.setSystemTime(Date.now() + 1001);
    await get('/ondemand/movies/m1?cache=short', alice);
    expect(calls()).toBe(2);
  });

  it('drops an upstream’s stored answers when a change through the gateway succeeds, not when it fails', async () => {
    fx.upstreams.upstreams.ondemand.behaviour = answering('public, max-age=60');
    await get('/ondemand/movies/m1?cache=edited', alice);
    await get('/ondemand/movies/m1?cache=edited', alice);
    expect(calls()).toBe(1);

    const admin = await adminToken();
    fx.upstreams.upstreams.ondemand.behaviour = (_req, res) => void res.writeHead(422, { 'content-type': 'application/json' }).end('{"detail":"invalid"}');
    await (await request(`${fx.gateway.url}/admin/ondemand/movies/m1`, { method: 'PUT', headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/json' }, body: '{}' })).body.text();
    fx.upstreams.upstreams.ondemand.behaviour = answering('public, max-age=60');
    await get('/ondemand/movies/m1?cache=edited', alice);
    expect(calls()).toBe(2);

    fx.upstreams.upstreams.ondemand.behaviour = (_req, res) => void res.writeHead(200, { 'content-type': 'application/json' }).end('{"id":"m1","title":"edited","genres":[],"free":true}');
    await (await request(`${fx.gateway.url}/admin/ondemand/movies/m1`, { method: 'PUT', headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/json' }, body: '{}' })).body.text();
    fx.upstreams.upstreams.ondemand.behaviour = answering('public, max-age=60');
    await get('/ondemand/movies/m1?cache=edited', alice);
    expect(calls()).toBe(4);
  });

  it('is off with UPSTREAM_CACHE_MAX_BYTES=0', async () => {
    fx.upstreams.upstreams.ondemand.behaviour = answering('public, max-age=60');
    await get('/ondemand/movies/m1?cache=off', alice, (fx.gateways[1] as RunningGateway));
    await get('/ondemand/movies/m1?cache=off', alice, (fx.gateways[1] as RunningGateway));
    expect(calls()).toBe(2);
  });

  it('coalesces identical GETs in flight, per caller: one call each, every client answered', async () => {
    const held: ServerResponse[] = [];
    fx.upstreams.upstreams.ondemand.behaviour = (_req, res) => void held.push(res);
    const joined = async () => sample(await (await fetch(`${fx.gateway.url}/metrics`)).text(), 'gateway_upstream_coalesced_total', { service: 'ondemand' }) ?? 0;
    const joinedBefore = await joined();
    const answers = Promise.all([alice, alice, alice, bob, bob].map((token) => get('/ondemand/movies/m1?cache=coalesced', token)));
    // Two callers: two calls reach the upstream, the other three wait on them (all five in before any answer).
    await eventually('two calls at the upstream, one a caller, the three other requests joined', async () => held.length === 2 && (await joined()) === joinedBefore + 3);
    for (const [index, res] of held.entries()) res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' }).end(JSON.stringify({ id: 'm1', title: `answer ${index}`, genres: [], free: true }));
    const titles = (await answers).map((answer) => answer.body.title);
    expect(new Set(titles.slice(0, 3)).size).toBe(1);
    expect(new Set(titles.slice(3)).size).toBe(1);
    expect(titles[0]).not.toBe(titles[3]);
    expect(calls()).toBe(2);
  });
});

describe('GraphQL and the cache: Cache-Control for CDNs, the response cache, invalidation by a mutation', () => {
  // Each test starts with empty caches: what one stored must not answer another.
  const fx = useStack({ perTest: true });

  const plans = (cacheControl: string) => (_req: IncomingMessage, res: ServerResponse) =>
    void res.writeHead(200, { 'content-type': 'application/json', 'cache-control': cacheControl }).end('[{"id":"basic","name":"Basic"}]');

  it('lets a CDN keep an anonymous catalogue answer as long as its upstream answers allow, and only that', async () => {
    fx.upstreams.upstreams.rights.behaviour = plans('public, max-age=300');
    const first = await request(`${fx.gateway.url}/graphql?query=${encodeURIComponent('{ plans { id } }')}`, { headers: { 'apollo-require-preflight': 'true' } });
    expect(first.statusCode).toBe(200);
    expect(first.headers['cache-control']).toMatch(/^public, max-age=(300|299)$/);
    await first.body.text();
    // The second answer comes from the gateway's cache: no call, and less time left.
    const second = await graphql(fx.gateway.url, '{ plans { id } }');
    expect(second.data).toEqual({ plans: [{ id: 'basic' }] });
    expect(fx.upstreams.upstreams.rights.requests).toHaveLength(1);

    // With a token: for that caller's own cache only, never a CDN's.
    const authenticated = await request(`${fx.gateway.url}/graphql`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${await userToken()}` }, body: JSON.stringify({ query: '{ plans { id } }' }) });
    expect(authenticated.headers['cache-control']).toMatch(/^private, max-age=(300|299)$/);
    expect(String(authenticated.headers.vary)).toMatch(/\bauthorization\b/i);
    await authenticated.body.text();
  });

  it('says no-store when an upstream answer is private, varies on a request header, or a field failed', async () => {
    fx.upstreams.upstreams.livetv.behaviour = (_req, res) =>
      void res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'private, max-age=300' }).end('[{"id":"c1","name":"One","number":1,"free":true}]');
    const privately = await request(`${fx.gateway.url}/graphql`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ query: '{ channels { id } }' }) });
    expect(privately.headers['cache-control']).toBe('no-store');
    await privately.body.text();
    // Public, but in the caller's language: a whole response has no Vary of its upstreams' to be matched by.
    fx.upstreams.upstreams.livetv.behaviour = (_req, res) =>
      void res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'public, max-age=300', vary: 'accept-language' }).end('[{"id":"c1","name":"Eins","number":1,"free":true}]');
    const localised = await request(`${fx.gateway.url}/graphql`, { method: 'POST', headers: { 'content-type': 'application/json', 'accept-language': 'de' }, body: JSON.stringify({ query: '{ channels { id name } }' }) });
    expect(localised.headers['cache-control']).toBe('no-store');
    await localised.body.text();
    fx.upstreams.upstreams.ondemand.behaviour = (_req, res) => void res.writeHead(503).end();
    const failed = await request(`${fx.gateway.url}/graphql`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ query: '{ movies { total } }' }) });
    expect(failed.headers['cache-control']).toBe('no-store');
    await failed.body.text();
  });

  it('never answers one user’s private data to another on GraphQL either', async () => {
    fx.upstreams.upstreams.users.behaviour = (req, res) =>
      void res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'private, max-age=60' }).end(JSON.stringify({ id: req.headers['x-user-id'], username: `user${String(req.headers['x-user-id'])}`, email: 'u@example.com', roles: ['user'] }));
    const [one, two] = await Promise.all([userToken('1'), userToken('2')]);
    expect((await graphql(fx.gateway.url, '{ me { id } }', { token: one })).data).toEqual({ me: { id: '1' } });
    expect((await graphql(fx.gateway.url, '{ me { id } }', { token: two })).data).toEqual({ me: { id: '2' } });
    expect((await graphql(fx.gateway.url, '{ me { id } }', { token: one })).data).toEqual({ me: { id: '1' } });
    // The third is token one's own stored response.
    expect(fx.upstreams.upstreams.users.requests.map((seen) => seen.headers['x-user-id'])).toEqual(['1', '2']);
  });

  it('answers an anonymous query again whole from the response cache, with its Age, counted as an operation', async () => {
    fx.upstreams.upstreams.search.behaviour = (_req, res) => void res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'public, max-age=60' }).end('{"items":[],"total":0}');
    const ask = () => request(`${fx.gateway.url}/graphql`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ query: 'query Offer { search(q: "offer") { total } }' }) });
    // A name used once counts as `other` (names earn a series by use).
    const operations = async () => sample(await (await fetch(`${fx.gateway.url}/metrics`)).text(), 'gateway_graphql_operations_total', { operation: 'other', type: 'query', outcome: 'success' }) ?? 0;
    const before = await operations();
    const first = await ask();
    const firstBody = await first.body.text();
    expect(firstBody).toBe('{"data":{"search":{"total":0}}}\n');
    expect(first.headers.age).toBeUndefined();
    // Its media type follows Accept: a CDN keeps the two apart.
    expect(String(first.headers.vary)).toMatch(/\baccept\b/i);
    const second = await ask();
    expect(String(second.headers.vary)).toMatch(/\baccept\b/i);
    expect(await second.body.text()).toBe(firstBody);
    expect(second.headers['cache-control']).toBe(first.headers['cache-control']);
    expect(second.headers['content-type']).toBe(first.headers['content-type']);
    expect(Number(second.headers.age)).toBeGreaterThanOrEqual(0);
    expect(fx.upstreams.upstreams.search.requests).toHaveLength(1);
    expect((await operations()) - before).toBe(2);
  });

  it('keeps apart what anonymous and authenticated requests were answered: neither is ever answered from the other’s', async () => {
    fx.upstreams.upstreams.rights.behaviour = plans('public, max-age=300');
    const token = await userToken();
    const ask = async (authorization?: string) => {
      const response = await request(`${fx.gateway.url}/graphql`, { method: 'POST', headers: { 'content-type': 'application/json', ...(authorization ? { authorization } : {}) }, body: JSON.stringify({ query: '{ plans { name } }' }) });
      await response.body.text();
      return response.headers;
    };
    expect((await ask(`Bearer ${token}`)).age).toBeUndefined();
    // The anonymous request finds nothing stored by the authenticated one, and the other way round.
    expect((await ask()).age).toBeUndefined();
    expect((await ask()).age).toBeDefined();
    expect((await ask(`Bearer ${token}`)).age).toBeDefined();
    expect((await ask(`Bearer ${await userToken('2')}`)).age).toBeUndefined();
    expect(fx.upstreams.upstreams.rights.requests.length).toBeGreaterThanOrEqual(1);
  });

  it('never stores an answer with an error or a private part', async () => {
    fx.upstreams.upstreams.livetv.behaviour = (_req, res) =>
      void res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'private, max-age=300' }).end('[{"id":"c1","name":"One","number":1,"free":true}]');
    fx.upstreams.upstreams.rights.behaviour = plans('public, max-age=300');
    for (let round = 0; round < 2; round++) expect((await graphql(fx.gateway.url, '{ plans { id } channels { id } }')).errors).toBeUndefined();
    expect(fx.upstreams.upstreams.livetv.requests).toHaveLength(2);
    fx.upstreams.upstreams.ondemand.behaviour = (_req, res) => void res.writeHead(503).end();
    for (let round = 0; round < 2; round++) expect((await graphql(fx.gateway.url, '{ plans { name id } movies { total } }')).errors).toHaveLength(1);
    expect(fx.upstreams.upstreams.ondemand.requests).toHaveLength(2);
  });

  it('drops stored responses when a change through the REST face succeeds on an upstream they were made of', async () => {
    const movie = (title: string) => (_req: IncomingMessage, res: ServerResponse) =>
      void res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'public, max-age=60' }).end(JSON.stringify({ items: [{ id: 'm2', title, genres: [], free: true }] }));
    fx.upstreams.upstreams.ondemand.behaviour = movie('before');
    fx.upstreams.upstreams.rights.behaviour = plans('public, max-age=300');
    const query = '{ movie(id: "m2") { title } }';
    expect((await graphql(fx.gateway.url, query)).data).toEqual({ movie: { title: 'before' } });
    expect((await graphql(fx.gateway.url, '{ plans { id name } }')).errors).toBeUndefined();
    expect((await graphql(fx.gateway.url, query)).data).toEqual({ movie: { title: 'before' } });
    expect(fx.upstreams.upstreams.ondemand.requests).toHaveLength(1);

    fx.upstreams.upstreams.ondemand.behaviour = (_req, res) => void res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' }).end('{"id":"m2","title":"after","genres":[],"free":true}');
    const edited = await request(`${fx.gateway.url}/admin/ondemand/movies/m2`, { method: 'PUT', headers: { authorization: `Bearer ${await adminToken()}`, 'content-type': 'application/json' }, body: '{"title":"after","genres":[],"free":true}' });
    expect(edited.statusCode).toBe(200);
    await edited.body.text();
    fx.upstreams.upstreams.ondemand.behaviour = movie('after');
    expect((await graphql(fx.gateway.url, query)).data).toEqual({ movie: { title: 'after' } });
    expect(fx.upstreams.upstreams.ondemand.requests).toHaveLength(3);
    // The plans came from another upstream: still stored.
    const plansAgain = await fetch(`${fx.gateway.url}/graphql`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ query: '{ plans { id name } }' }) });
    await plansAgain.text();
    expect(plansAgain.headers.get('age')).not.toBeNull();
  });

  it('drops the on-demand service’s stored answers after adminUpdateMovie', async () => {
    const movie = (title: string) => (_req: IncomingMessage, res: ServerResponse) =>
      void res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'public, max-age=60' }).end(JSON.stringify({ items: [{ id: 'm1', title, genres: [], free: true }] }));
    fx.upstreams.upstreams.ondemand.behaviour = movie('before');
    const query = '{ movie(id: "m1") { title } }';
    expect((await graphql(fx.gateway.url, query)).data).toEqual({ movie: { title: 'before' } });
    expect((await graphql(fx.gateway.url, query)).data).toEqual({ movie: { title: 'before' } });
    expect(fx.upstreams.upstreams.ondemand.requests).toHaveLength(1);

    fx.upstreams.upstreams.ondemand.behaviour = (_req, res) => void res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' }).end('{"id":"m1","title":"after","genres":[],"free":true}');
    const edited = await graphql(fx.gateway.url, 'mutation { adminUpdateMovie(id: "m1", input: { title: "after", genres: [], free: true }) { title } }', { token: await adminToken() });
    expect(edited.errors).toBeUndefined();
    fx.upstreams.upstreams.ondemand.behaviour = movie('after');
    expect((await graphql(fx.gateway.url, query)).data).toEqual({ movie: { title: 'after' } });
    expect(fx.upstreams.upstreams.ondemand.requests).toHaveLength(3);
  });
});

/** An upstream's JSON answer. */
const json = (res: ServerResponse, body: unknown, headers: Record<string, string> = {}, status = 200) =>
  void res.writeHead(status, { 'content-type': 'application/json', ...headers }).end(JSON.stringify(body));

/** What a GraphQL client got: status, headers, body. */
async function ask(baseUrl: string, query: string, token?: string, extra: Record<string, string> = {}) {
  const response = await request(`${baseUrl}/graphql`, { method: 'POST', headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}), ...extra }, body: JSON.stringify({ query }) });
  const body = (await response.body.json()) as { data?: Record<string, unknown> | null; errors?: { extensions: { code: string } }[] };
  return { status: response.statusCode, headers: response.headers, body };
}

/** user management's `me`, for whoever the gateway said asks (X-User-ID, X-User-Roles), with the given Cache-Control. */
const meAnswering = (cacheControl: string, username = 'someone') => (req: IncomingMessage, res: ServerResponse) =>
  json(res, { id: req.headers['x-user-id'], username, roles: String(req.headers['x-user-roles']).split(',') }, { 'cache-control': cacheControl });

const ME = '{ me { id roles } }';
const meOf = (answer: Awaited<ReturnType<typeof ask>>) => answer.body.data?.me as { id: string; roles: string[] } | undefined;

describe('the GraphQL response cache per identity, from the attacker’s side', () => {
  const fx = useStack({ perTest: true });

  it('answers a token’s response again to that token alone, private, with its Age; two users never see each other’s; the REST face never reaches it', async () => {
    const users = fx.upstreams.upstreams.users;
    users.behaviour = meAnswering('private, max-age=60');
    const [alice, bob] = await Promise.all([userToken('1'), userToken('2')]);
    const first = await ask(fx.gateway.url, ME, alice);
    expect(meOf(first)?.id).toBe('1');
    expect(first.headers['cache-control']).toMatch(/^private, max-age=(60|59)$/);
    expect(String(first.headers.vary)).toMatch(/\bauthorization\b/i);
    expect(first.headers.age).toBeUndefined();
    expect(meOf(await ask(fx.gateway.url, ME, bob))?.id).toBe('2');
    for (const [token, id] of [[alice, '1'], [bob, '2'], [alice, '1']] as const) {
      const again = await ask(fx.gateway.url, ME, token);
      expect(meOf(again)?.id).toBe(id);
      expect(again.headers.age).toBeDefined();
      expect(again.headers['cache-control']).toBe(first.headers['cache-control']);
    }
    expect(users.requests.map((seen) => [seen.headers['x-user-id'], seen.headers.authorization])).toEqual([
      ['1', `Bearer ${alice}`],
      ['2', `Bearer ${bob}`],
    ]);
    // REST asks the upstream itself (a private answer is kept by no shared cache).
    const rest = await request(`${fx.gateway.url}/users/me`, { headers: { authorization: `Bearer ${alice}` } });
    expect(((await rest.body.json()) as { id: string }).id).toBe('1');
    expect(users.requests).toHaveLength(3);
  });

  it('keeps a user’s and an admin’s token of the same subject apart', async () => {
    const users = fx.upstreams.upstreams.users;
    users.behaviour = meAnswering('private, max-age=60');
    const [asUser, asAdmin] = await Promise.all([userToken('1'), adminToken('1')]);
    for (let round = 0; round < 2; round++) {
      expect(meOf(await ask(fx.gateway.url, ME, asUser))?.roles).toEqual(['user']);
      expect(meOf(await ask(fx.gateway.url, ME, asAdmin))?.roles).toEqual(['user', 'admin']);
    }
    expect(users.requests.map((seen) => seen.headers['x-user-roles'])).toEqual(['user', 'user,admin']);
  });

  it('never answers a token past its expiry: nothing is kept longer than the token, and an expired token is refused', async () => {
    // The gateway runs in this process: its clocks (token checks, the cache) follow the test's Date.
    // Real time again before the stack closes (afterEach runs before onTestFinished's callbacks).
    vi.useFakeTimers({ toFake: ['Date'] });
    try {
      vi.setSystemTime(Math.floor(Date.now() / 1000) * 1000);
      const users = fx.upstreams.upstreams.users;
      users.behaviour = meAnswering('private, max-age=600');
      const token = await signToken({ sub: '1', roles: ['user'] }, { expiresIn: '60s' });
      const first = await ask(fx.gateway.url, ME, token);
      expect(first.headers['cache-control']).toBe('private, max-age=60');
      vi.setSystemTime(Date.now() + 59_000);
      const kept = await ask(fx.gateway.url, ME, token);
      expect(kept.headers.age).toBe('59');
      expect(kept.headers['cache-control']).toBe('private, max-age=60');
      expect(users.requests).toHaveLength(1);
      // Its expiry passed (within the verifier's clock tolerance the token is still accepted): asked again, kept no more.
      vi.setSystemTime(Date.now() + 2_000);
      const after = await ask(fx.gateway.url, ME, token);
      expect(after.headers.age).toBeUndefined();
      expect(after.headers['cache-control']).toBe('no-store');
      expect(users.requests).toHaveLength(2);
      vi.setSystemTime(Date.now() + 10_000);
      const expired = await ask(fx.gateway.url, ME, token);
      expect(expired.status).toBe(401);
      expect(expired.body.errors?.[0]?.extensions.code).toBe('UNAUTHENTICATED');
      expect(users.requests).toHaveLength(2);
    } finally {
      vi.useRealTimers();
    }
  });

  it('answers concurrent first requests of two users each with their own: one upstream call each, then their own entries', async () => {
    const users = fx.upstreams.upstreams.users;
    const held: [IncomingMessage, ServerResponse][] = [];
    users.behaviour = (req, res) => void held.push([req, res]);
    const [alice, bob] = await Promise.all([userToken('1'), userToken('2')]);
    const tokens = [alice, bob, alice, bob, alice, bob];
    const answers = Promise.all(tokens.map((token) => ask(fx.gateway.url, ME, token)));
    const joined = async () => sample(await (await fetch(`${fx.gateway.url}/metrics`)).text(), 'gateway_upstream_coalesced_total', { service: 'users' }) ?? 0;
    await eventually('one call at user management for each user, the four other requests joined', async () => held.length === 2 && (await joined()) === 4);
    // Answered in the other order than asked: each call's answer is its own caller's.
    for (const [req, res] of [...held].reverse()) meAnswering('private, max-age=60')(req, res);
    expect((await answers).map((answer) => meOf(answer)?.id)).toEqual(['1', '2', '1', '2', '1', '2']);
    users.behaviour = (_req, res) => json(res, { id: 'nobody', username: 'nobody', roles: [] }, { 'cache-control': 'no-store' });
    for (const [token, id] of [[alice, '1'], [bob, '2']] as const) {
      const again = await ask(fx.gateway.url, ME, token);
      expect(meOf(again)?.id).toBe(id);
      expect(again.headers.age).toBeDefined();
    }
    expect(users.requests).toHaveLength(2);
  });

  it('drops a user’s entitlements when a grant through the REST face succeeds, and asks again', async () => {
    const ENTITLED = '{ movies(limit: 2) { items { id entitlement { canPlay reason } } } }';
    let granted = false;
    fx.upstreams.upstreams.ondemand.behaviour = (_req, res) =>
      json(res, { items: ['m1', 'm2'].map((id) => ({ id, title: id, genres: [], free: false })), total: 2 }, { 'cache-control': 'public, max-age=60' });
    fx.upstreams.upstreams.rights.behaviour = (req, res) => {
      if (req.method === 'POST') {
        granted = true;
        return json(res, { id: 'g1', userId: '2', contentId: 'movie:m1' }, {}, 201);
      }
      const canPlay = (id: string) => granted && id === 'movie:m1';
      const ids = decodeURIComponent(new URL(req.url ?? '', 'http://rights').searchParams.get('contentIds') ?? '').split(',');
      json(res, { items: ids.map((contentId) => ({ contentId, canPlay: canPlay(contentId), reason: canPlay(contentId) ? 'grant' : 'subscription_required' })) }, { 'cache-control': 'private, max-age=10' });
    };
    const bob = await userToken('2');
    const canPlay = (answer: Awaited<ReturnType<typeof ask>>) => (answer.body.data?.movies as { items: { entitlement: { canPlay: boolean } }[] }).items.map((item) => item.entitlement.canPlay);
    const first = await ask(fx.gateway.url, ENTITLED, bob);
    expect(canPlay(first)).toEqual([false, false]);
    expect(first.headers['cache-control']).toMatch(/^private, max-age=(10|9)$/);
    expect((await ask(fx.gateway.url, ENTITLED, bob)).headers.age).toBeDefined();
    const reads = () => fx.upstreams.upstreams.rights.requests.filter((seen) => seen.method === 'GET').length;
    expect(reads()).toBe(1);

    const grant = await request(`${fx.gateway.url}/admin/rights/entitlements`, { method: 'POST', headers: { authorization: `Bearer ${await adminToken()}`, 'content-type': 'application/json' }, body: JSON.stringify({ userId: '2', contentId: 'movie:m1' }) });
    expect(grant.statusCode).toBe(201);
    await grant.body.text();
    const after = await ask(fx.gateway.url, ENTITLED, bob);
    expect(after.headers.age).toBeUndefined();
    expect(canPlay(after)).toEqual([true, false]);
    expect(reads()).toBe(2);
  });

  it('never keeps an answer with an error, a no-store or no-cache part, a Vary, or no lifetime, for a token either', async () => {
    const token = await userToken('1');
    const users = fx.upstreams.upstreams.users;
    for (const [cacheControl, extra] of [['private, no-store, max-age=60', {}], ['private, no-cache, max-age=60', {}], ['private', {}], ['max-age=60', {}], ['private, max-age=60', { vary: 'accept-language' }]] as const) {
      const before = users.requests.length;
      users.behaviour = (req, res) => json(res, { id: req.headers['x-user-id'], username: 'u', roles: ['user'] }, { 'cache-control': cacheControl, ...extra });
      for (let round = 0; round < 2; round++) {
        const answer = await ask(fx.gateway.url, `{ me { id } } # ${cacheControl} ${JSON.stringify(extra)}`, token);
        expect(answer.headers['cache-control'], cacheControl).toBe('no-store');
        expect(answer.headers.age, cacheControl).toBeUndefined();
      }
      expect(users.requests.length - before, cacheControl).toBe(2);
    }
    // A field that failed: the other field's private answer is not kept with it.
    users.behaviour = meAnswering('private, max-age=60');
    fx.upstreams.upstreams.rights.behaviour = (_req, res) => void res.writeHead(503).end();
    for (let round = 0; round < 2; round++) {
      const answer = await ask(fx.gateway.url, '{ me { id subscription { planId } } }', token);
      expect(answer.body.errors).toHaveLength(1);
      expect(answer.headers.age).toBeUndefined();
    }
  });
});

describe('the GraphQL response cache per identity, bounded', () => {
  // 64 KiB in all: half for anonymous responses, half for those of callers with tokens, a sixteenth of that for any one subject.
  const fx = useStack({ env: { GRAPHQL_RESPONSE_CACHE_MAX_BYTES: String(64 * 1024) }, perTest: true });

  it('lets no subject, with many tokens and many queries, evict another user’s responses or the anonymous ones; a response too large for a subject’s share is never kept', async () => {
    fx.upstreams.upstreams.users.behaviour = (req, res) => meAnswering('private, max-age=60', `user${String(req.headers['x-user-id'])}-${'x'.repeat(1000)}`)(req, res);
    fx.upstreams.upstreams.rights.behaviour = (_req, res) => json(res, [{ id: 'basic', name: 'Basic' }], { 'cache-control': 'public, max-age=300' });
    const [alice, bob] = await Promise.all([userToken('1'), userToken('2')]);
    const victims = [[alice, '1'], [bob, '2']] as const;
    for (const [token] of victims) await ask(fx.gateway.url, '{ me { id username } }', token);
    await ask(fx.gateway.url, '{ plans { id } }');

    // One subject, five tokens, 30 different queries each (aliases): some 150 KB of responses.
    const attacker = await Promise.all(Array.from({ length: 5 }, (_, index) => signToken({ sub: '666', roles: ['user'], jti: `attack-${index}` })));
    for (const [index, token] of attacker.entries()) {
      for (let query = 0; query < 30; query++) expect((await ask(fx.gateway.url, `{ q${index}_${query}: me { id username } }`, token)).status).toBe(200);
    }
    const usersCalls = fx.upstreams.upstreams.users.requests.length;
    for (const [token, id] of victims) {
      const again = await ask(fx.gateway.url, '{ me { id username } }', token);
      expect((again.body.data?.me as { id: string }).id).toBe(id);
      expect(again.headers.age, `user ${id}'s response still kept`).toBeDefined();
    }
    expect((await ask(fx.gateway.url, '{ plans { id } }')).headers.age).toBeDefined();
    expect(fx.upstreams.upstreams.users.requests.length).toBe(usersCalls);

    // Larger than one subject's share (2 KiB here): answered, never kept.
    fx.upstreams.upstreams.users.behaviour = (req, res) => meAnswering('private, max-age=60', 'x'.repeat(4000))(req, res);
    const carol = await userToken('4');
    for (let round = 0; round < 2; round++) expect((await ask(fx.gateway.url, '{ me { id username } }', carol)).headers.age).toBeUndefined();
  });
});

describe('the reference services say honestly what may be cached', () => {
  let services: ReferenceServices;

  beforeAll(async () => {
    services = await startReferenceServices({ anyPorts: true, env: { ...process.env, DATA_DIR: IN_MEMORY } });
  });
  afterAll(() => services.close());

  it('public catalogue, private user data, never credentials, changes or errors', async () => {
    const cacheControl = async (url: string, init: RequestInit = {}) => (await fetch(url, init)).headers.get('cache-control');
    const token = await userToken('1');
    const auth = { authorization: `Bearer ${token}`, 'x-user-id': '1', 'x-user-roles': 'user' };
    expect(await cacheControl(`${services.urls.rights}/subscriptions/plans`)).toBe('public, max-age=300');
    expect(await cacheControl(`${services.urls.ondemand}/ondemand/movies`, { headers: auth })).toBe('public, max-age=60');
    expect(await cacheControl(`${services.urls.users}/users/me`, { headers: auth })).toBe('private, max-age=10');
    expect(await cacheControl(`${services.urls.rights}/subscriptions/entitlements?contentIds=movie:m1`, { headers: auth })).toBe('private, max-age=10');
    expect(await cacheControl(`${services.urls.auth}/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"username":"alice","password":"alice-password"}' })).toBe('no-store');
    expect(await cacheControl(`${services.urls.ondemand}/ondemand/movies/nope`, { headers: auth })).toBe('no-store');
  });
});

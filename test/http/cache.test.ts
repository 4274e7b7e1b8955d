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
import { adminToken, userToken } from '../helpers/tokens.js';

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
    const answers = Promise.all([alice, alice, alice, bob, bob].map((token) => get('/ondemand/movies/m1?cache=coalesced', token)));
    // Two callers: two calls reach the upstream, the other three wait on them.
    await eventually('two calls at the upstream, one a caller', () => held.length === 2);
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

    const authenticated = await request(`${fx.gateway.url}/graphql`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${await userToken()}` }, body: JSON.stringify({ query: '{ plans { id } }' }) });
    expect(authenticated.headers['cache-control']).toBe('no-store');
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
    expect(fx.upstreams.upstreams.users.requests).toHaveLength(3);
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

  it('never answers from it a request with a token, nor stores what a token was answered', async () => {
    fx.upstreams.upstreams.rights.behaviour = plans('public, max-age=300');
    const token = await userToken();
    const ask = async (authorization?: string) => {
      const response = await request(`${fx.gateway.url}/graphql`, { method: 'POST', headers: { 'content-type': 'application/json', ...(authorization ? { authorization } : {}) }, body: JSON.stringify({ query: '{ plans { name } }' }) });
      await response.body.text();
      return response.headers;
    };
    expect((await ask(`Bearer ${token}`)).age).toBeUndefined();
    expect((await ask(`Bearer ${token}`)).age).toBeUndefined();
    // The anonymous request finds nothing stored by the authenticated ones.
    expect((await ask()).age).toBeUndefined();
    expect((await ask()).age).toBeDefined();
    expect((await ask(`Bearer ${token}`)).age).toBeUndefined();
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

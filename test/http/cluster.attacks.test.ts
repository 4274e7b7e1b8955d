/**
 * The cluster's shared state (issue 21) attacked through its inputs: three gateways on real sockets share
 * one real redis-server, in front of recording upstreams that answer as each test says. What one client
 * gets never reaches another on any replica, nor does its credential reach Redis; what Redis holds — an
 * entry, a persisted document, a generation, a message on the bus — is written by anyone (another version
 * of the gateway, an operator's mistake, an eviction under maxmemory, an attacker with access to it) and
 * checked before it is used; every bound holds in Redis as in each replica's memory, and no client can
 * fill a cache so that it keeps nothing else; a change racing reads is never undone by a cached or joined
 * answer, even when its outcome is unknown; a paused Redis costs a request a bounded wait; trusted
 * documents stay the only documents. Every test asserts what the upstreams saw and what each client got.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { fileURLToPath } from 'node:url';
import { readFileSync } from 'node:fs';
import { Redis } from 'ioredis';
import { beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import type { UpstreamName } from '../../shared/upstreams.js';
import { TV_APP_MANIFEST } from '../../scripts/lib/trusted-manifest.js';
import { useFixture } from '../helpers/fixture.js';
import { captureLog, type CapturedLog, type RunningGateway } from '../helpers/gateway.js';
import { graphql } from '../helpers/graphql.js';
import { sample } from '../helpers/metrics.js';
import type { RecordingUpstream } from '../helpers/recording-upstream.js';
import { useRedis, type RunningRedis } from '../helpers/redis.js';
import { useStack, type RecordingStack } from '../helpers/stack.js';
import { adminToken, signToken, userToken } from '../helpers/tokens.js';
import { eventually, within } from '../helpers/wait.js';

const json = (res: ServerResponse, body: unknown, headers: Record<string, string> = {}, status = 200) =>
  void res.writeHead(status, { 'content-type': 'application/json', ...headers }).end(JSON.stringify(body));

const sha256 = (text: string, encoding: 'hex' | 'base64url' = 'hex') => createHash('sha256').update(text).digest(encoding);

/** The key of an entry in Redis (entries.ts): the SHA-256 of the cache's own key. */
const entryKey = (cache: string, key: string) => `gateway:${cache}:entry:${sha256(key, 'base64url')}`;
/** Where the upstream cache keeps the answer to GET `path` of `upstream` (cache.ts: `origin method path`). */
const upstreamEntry = (upstream: RecordingUpstream, path: string) => entryKey('upstream', `${new URL(upstream.url).origin} GET ${path}`);
/** Where a persisted query is kept: Apollo's `apq:` prefix and the document's hash. */
const apqEntry = (hash: string) => entryKey('persisted_queries', `apq:${hash}`);

/** A client of the test's own on the gateways' Redis: what anyone with access to it may read and write. */
function useInspector(redis: RunningRedis): Redis {
  return useFixture(
    async () => {
      const inspect = new Redis(redis.url, { maxRetriesPerRequest: 1 });
      inspect.on('error', () => undefined);
      return inspect;
    },
    async (inspect) => void inspect.disconnect(),
  );
}

/**
 * What each describe of this file starts: its own redis-server, a client of the test's own on it, and
 * three gateways sharing it (with `env`), logging where the test reads them.
 */
function useCluster(env: NodeJS.ProcessEnv = {}): { redis: RunningRedis; inspect: Redis; log: CapturedLog; fx: RecordingStack } {
  const redis = useRedis();
  const inspect = useInspector(redis);
  const log = captureLog('info');
  const fx = useStack({ gateways: 3, env: () => ({ REDIS_URL: redis.url, ...env }), logger: log.logger });
  return { redis, inspect, log, fx };
}

/** Every key of Redis matching `pattern` (SCAN, as an operator would, never KEYS). */
async function scan(inspect: Redis, pattern: string): Promise<string[]> {
  const keys: string[] = [];
  let cursor = '0';
  do {
    const [next, found] = await inspect.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
    cursor = next;
    keys.push(...found);
  } while (cursor !== '0');
  return keys;
}

const metrics = async (gateway: RunningGateway) => (await fetch(`${gateway.url}/metrics`)).text();

/** Until every replica hears the bus (and so uses what is cached). */
const allListening = (gateways: readonly RunningGateway[]) =>
  eventually('every replica to hear the invalidation bus', async () => (await Promise.all(gateways.map(metrics))).every((text) => sample(text, 'gateway_cache_bus_listening') === 1));

/** Lines logged at error level or above (pino: 50 error, 60 fatal). */
const errorsIn = (log: CapturedLog, from = 0) => log.lines.slice(from).filter((line) => Number(line.level) >= 50);

/** The three replicas, in the order the tests use them. */
const replicas = (stack: RecordingStack) => stack.gateways as readonly [RunningGateway, RunningGateway, RunningGateway];

/** A REST GET as a client makes it; the body parsed when it is JSON. */
async function get(gateway: RunningGateway, path: string, token?: string): Promise<{ status: number; body: Record<string, unknown>; headers: Headers }> {
  const response = await fetch(`${gateway.url}${path}`, { headers: token ? { authorization: `Bearer ${token}` } : {} });
  const text = await response.text();
  let body: Record<string, unknown>;
  try {
    body = JSON.parse(text) as Record<string, unknown>;
  } catch {
    body = { text };
  }
  return { status: response.status, body, headers: response.headers };
}

/** The GraphQL POST of an APQ client: the hash alone, or with its document to register it. */
async function apq(gateway: RunningGateway, query: string, withDocument: boolean): Promise<{ status: number; data?: unknown; codes: string[] }> {
  const extensions = { persistedQuery: { version: 1, sha256Hash: sha256(query) } };
  const response = await fetch(`${gateway.url}/graphql`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(withDocument ? { query, extensions } : { extensions }) });
  const body = (await response.json()) as { data?: unknown; errors?: { extensions?: { code?: string } }[] };
  return { status: response.status, ...(body.data !== undefined ? { data: body.data } : {}), codes: (body.errors ?? []).map((error) => String(error.extensions?.code)) };
}

/** A promise awaited later in the test: if the test fails first, its rejection is not left unhandled. */
function later<T>(promise: Promise<T>): Promise<T> {
  promise.catch(() => undefined);
  return promise;
}

/** The REST prefix of each upstream a test answers through (the route table's). */
const PREFIXES = { users: '/users', rights: '/subscriptions', ondemand: '/ondemand', livetv: '/livetv' } as const;

/**
 * A persisted query's answer by its hash alone: its document's `data`, or — where the document is not to
 * be had (Redis away, or holding something else) — PERSISTED_QUERY_NOT_FOUND, after which an APQ client
 * sends its document again. Never another document's answer, a parse failure or a 500.
 */
function expectPersisted(answer: { status: number; data?: unknown; codes: string[] }, data: unknown): void {
  if (answer.codes.length === 0) expect(answer).toEqual({ status: 200, data, codes: [] });
  else expect(answer).toEqual({ status: 200, codes: ['PERSISTED_QUERY_NOT_FOUND'] });
}

/**
 * Until `gateway`'s writes to Redis so far have landed: it caches one more public answer (a path of its
 * own on `upstream`) and that entry shows in Redis. A replica's commands go over one connection, in order,
 * so any entry it would have stored before is there by then; one that is not was never written.
 */
async function settled(gateway: RunningGateway, upstream: RecordingUpstream, inspect: Redis): Promise<void> {
  const path = `${PREFIXES[upstream.name as keyof typeof PREFIXES]}/settled-${randomBytes(6).toString('hex')}`;
  const previous = upstream.behaviour;
  upstream.behaviour = (req, res, recorded) => (req.url === path ? json(res, { settled: true }, { 'cache-control': 'public, max-age=60' }) : previous(req, res, recorded));
  const token = await userToken('settle');
  try {
    // Asked again until stored: a replica that briefly did not hear the bus (a busy machine) stores nothing meanwhile.
    await eventually(`${path}, cached through ${gateway.url}, to be in Redis`, async () => {
      expect((await get(gateway, path, token)).status).toBe(200);
      return (await inspect.exists(upstreamEntry(upstream, path))) === 1;
    });
  } finally {
    upstream.behaviour = previous;
  }
}

/** What the upstream knows of a caller: the identity the gateway sent. */
const callerOf = (req: IncomingMessage) => String(req.headers['x-user-id'] ?? 'anonymous');

/** Personal answers: the caller's own profile, made from the X-User-ID the gateway sends, with `headers`. */
const personal = (headers: Record<string, string>) => (req: IncomingMessage, res: ServerResponse) =>
  json(res, { id: callerOf(req), username: `user-${callerOf(req)}`, email: `${callerOf(req)}@example.com`, roles: ['user'] }, headers);

describe('personal answers across replicas', () => {
  const { inspect, log, fx } = useCluster();
  let alice: string;
  let bob: string;
  beforeAll(async () => {
    [alice, bob] = await Promise.all([userToken('alice'), userToken('bob')]);
  });

  const paths: readonly [UpstreamName, string][] = [
    ['users', '/users/me'],
    ['rights', '/subscriptions/me'],
    ['rights', '/subscriptions/entitlements?contentIds=movie:m1,channel:c1'],
  ];
  // Every way an upstream can make an answer storable without saying `public` or `private`.
  const cacheable: readonly Record<string, string>[] = [
    { 'cache-control': 'max-age=60' },
    { 'cache-control': 's-maxage=60' },
    { 'cache-control': 'must-revalidate, max-age=60' },
    { 'cache-control': 'proxy-revalidate, max-age=60, stale-while-revalidate=60' },
    { expires: new Date(Date.now() + 3_600_000).toUTCString() },
    { 'last-modified': new Date(Date.now() - 86_400_000).toUTCString() },
  ];
  const cases = paths.flatMap(([upstream, path]) => cacheable.map((headers) => [path, JSON.stringify(headers), upstream, headers] as const));

  it.each(cases)('REST %s answered with %s: each caller gets their own answer on every replica, from the upstream, and Redis keeps none of it', async (path, _shown, upstream, headers) => {
    const [a, b, c] = replicas(fx);
    await allListening(fx.gateways);
    const origin = fx.upstreams.upstreams[upstream];
    origin.behaviour = personal(headers);
    const before = await inspect.zcard('gateway:upstream:index');
    const turns: readonly [RunningGateway, string, string][] = [
      [a, alice, 'alice'],
      [b, bob, 'bob'],
      [c, alice, 'alice'],
      [a, bob, 'bob'],
      [b, alice, 'alice'],
      [c, bob, 'bob'],
    ];
    for (const [gateway, token, who] of turns) {
      const answer = await get(gateway, path, token);
      expect(answer.status).toBe(200);
      expect(answer.body).toMatchObject({ id: who });
      expect(answer.headers.get('cache-control') ?? 'private').toMatch(/^private\b/);
    }
    // The upstream answered every request, each for the caller it named.
    expect(origin.requests.filter((request) => request.url === path).map((request) => request.headers['x-user-id'])).toEqual(turns.map(([, , who]) => who));
    for (const gateway of [a, b, c]) await settled(gateway, origin, inspect);
    expect(await inspect.exists(upstreamEntry(origin, path))).toBe(0);
    // Only the three sentinels landed.
    expect(await inspect.zcard('gateway:upstream:index')).toBe(before + 3);
    expect(errorsIn(log)).toEqual([]);
  });

  it('GraphQL me: each caller gets their own profile on every replica, mixed with REST calls, never one from a cache', async () => {
    const [a, b, c] = replicas(fx);
    await allListening(fx.gateways);
    const users = fx.upstreams.upstreams.users;
    users.behaviour = personal({ 'cache-control': 'max-age=60' });
    const turns: readonly [RunningGateway, string, string, 'rest' | 'graphql'][] = [
      [a, alice, 'alice', 'graphql'],
      [b, bob, 'bob', 'graphql'],
      [c, alice, 'alice', 'rest'],
      [c, bob, 'bob', 'graphql'],
      [a, bob, 'bob', 'rest'],
      [b, alice, 'alice', 'graphql'],
    ];
    for (const [gateway, token, who, face] of turns) {
      if (face === 'rest') {
        expect((await get(gateway, '/users/me', token)).body).toMatchObject({ id: who });
        continue;
      }
      const answer = await graphql(gateway.url, '{ me { id username } }', { token });
      expect(answer.errors, answer.text).toBeUndefined();
      expect(answer.data).toEqual({ me: { id: who, username: `user-${who}` } });
    }
    expect(users.requests.filter((request) => request.url === '/users/me').map((request) => request.headers['x-user-id'])).toEqual(turns.map(([, , who]) => who));
    for (const gateway of [a, b, c]) await settled(gateway, users, inspect);
    expect(await inspect.exists(upstreamEntry(users, '/users/me'))).toBe(0);
    expect(await scan(inspect, 'gateway:graphql_response:entry:*')).toEqual([]);
  });

  it('an answer the upstream made public for every caller, but that varies on Authorization, is shared right and keeps no bearer token in Redis', async () => {
    const [a, b, c] = replicas(fx);
    await allListening(fx.gateways);
    const users = fx.upstreams.upstreams.users;
    users.behaviour = personal({ 'cache-control': 'public, max-age=60', vary: 'authorization' });
    expect((await get(a, '/users/me?vary=authorization', alice)).body).toMatchObject({ id: 'alice' });
    await eventually('the answer to alice to be in Redis', async () => (await inspect.exists(upstreamEntry(users, '/users/me?vary=authorization'))) === 1);
    // Alice's own answer, from Redis, on another replica; bob's asked of the upstream for him.
    expect((await get(c, '/users/me?vary=authorization', alice)).body).toMatchObject({ id: 'alice' });
    expect((await get(b, '/users/me?vary=authorization', bob)).body).toMatchObject({ id: 'bob' });
    expect(users.requests.filter((request) => request.url === '/users/me?vary=authorization').map((request) => request.headers['x-user-id'])).toEqual(['alice', 'bob']);
    // Whoever reads Redis (a backup, a monitoring tool, a replica of it) finds no caller's credentials.
    for (const gateway of [a, b, c]) await settled(gateway, users, inspect);
    for (const key of await scan(inspect, 'gateway:*')) {
      if ((await inspect.type(key)) !== 'string') continue;
      const raw = (await inspect.getBuffer(key))?.toString('latin1') ?? '';
      for (const token of [alice, bob]) {
        expect(raw, key).not.toContain(token);
        expect(raw, key).not.toContain(token.split('.')[2]);
      }
    }
  });
});

/**
 * On-demand as a catalogue that changes: GET answers each movie's current title, public for a minute;
 * PUT (the admin route) sets it. `titles` holds what the upstream would answer now.
 */
function catalogue(upstream: RecordingUpstream): Map<string, string> {
  const titles = new Map<string, string>();
  upstream.behaviour = async (req, res, recorded) => {
    if (req.method === 'PUT') {
      const id = /\/movies\/([^/?]+)/.exec(req.url ?? '')?.[1] ?? '';
      titles.set(id, (JSON.parse((await recorded()).body.toString()) as { title: string }).title);
      return json(res, { id, title: titles.get(id) });
    }
    json(res, moviesAsked(req.url ?? '', titles), { 'cache-control': 'public, max-age=60' });
  };
  return titles;
}

/** What on-demand answers to GET `url` (one movie, or a batch: GraphQL's `movie` asks for a batch) with `titles` as they are. */
function moviesAsked(url: string, titles: ReadonlyMap<string, string>): unknown {
  const movie = (id: string) => ({ id, title: titles.get(id) ?? 'original', genres: [], free: true });
  const batch = /\/movies\/batch\?ids=([^&]+)/.exec(url);
  if (batch) return { items: decodeURIComponent(batch[1] ?? '').split(',').map(movie) };
  return movie(/\/movies\/([^/?]+)/.exec(url)?.[1] ?? '');
}

async function editTitle(gateway: RunningGateway, id: string, title: string): Promise<void> {
  const response = await fetch(`${gateway.url}/admin/ondemand/movies/${id}`, {
    method: 'PUT',
    headers: { authorization: `Bearer ${await adminToken()}`, 'content-type': 'application/json' },
    body: JSON.stringify({ title, genres: [], free: true }),
  });
  expect(response.status).toBe(200);
}

const titleOn = async (gateway: RunningGateway, id: string, token: string) => {
  const answer = await get(gateway, `/ondemand/movies/${id}`, token);
  expect(answer.status).toBe(200);
  return answer.body.title;
};

/** Invalidations received, as a replica counts them. */
const received = async (gateway: RunningGateway) => sample(await metrics(gateway), 'gateway_cache_bus_messages_total', { direction: 'received' }) ?? 0;

/**
 * Publishes `messages` on the bus as anyone with access to Redis can, then a well-formed one that changes
 * nothing (an upstream, generation 0, from no replica) and waits until every replica has counted it: by
 * then each has read everything published before it.
 */
async function publishOnBus(inspect: Redis, gateways: readonly RunningGateway[], messages: readonly string[]): Promise<void> {
  const before = await Promise.all(gateways.map(received));
  for (const message of messages) await inspect.publish('gateway:invalidations', message);
  await inspect.publish('gateway:invalidations', JSON.stringify({ upstream: 'search', generation: 0, at: Date.now(), replica: 'test' }));
  await eventually('every replica to read what was published', async () => (await Promise.all(gateways.map(received))).every((count, index) => count > (before[index] ?? 0)));
}

describe('what Redis holds is not trusted blindly', () => {
  const { inspect, log, fx } = useCluster();
  let token: string;
  beforeAll(async () => {
    token = await userToken('reader');
  });

  /** Public answers on on-demand and live TV that name what was asked, and a movie list for GraphQL. */
  function publicAnswers(): void {
    const answer = (name: string) => (req: IncomingMessage, res: ServerResponse) => {
      if (req.url?.startsWith('/ondemand/movies?')) return json(res, { items: [{ id: 'm1', title: 'Listed', genres: [], free: true }], total: 1 }, { 'cache-control': 'public, max-age=60' });
      json(res, { upstream: name, url: req.url }, { 'cache-control': 'public, max-age=60' });
    };
    fx.upstreams.upstreams.ondemand.behaviour = answer('ondemand');
    fx.upstreams.upstreams.livetv.behaviour = answer('livetv');
  }

  /** Caches on A (REST, a GraphQL response, a persisted query), and waits until Redis holds all three. */
  async function cacheOnA(tag: string): Promise<{ path: string; query: string; apqQuery: string }> {
    const [a] = replicas(fx);
    const path = `/livetv/channels/${tag}`;
    const query = `{ movies(limit: 1, genre: "${tag}") { total items { id title } } }`;
    const apqQuery = `{ movies(limit: 2, genre: "${tag}") { total } }`;
    expect((await get(a, path, token)).body).toEqual({ upstream: 'livetv', url: path });
    expect((await graphql(a.url, query)).data).toEqual({ movies: { total: 1, items: [{ id: 'm1', title: 'Listed' }] } });
    expect(await apq(a, apqQuery, true)).toEqual({ status: 200, data: { movies: { total: 1 } }, codes: [] });
    await eventually('the three entries to be in Redis', async () => {
      const stored = await Promise.all([inspect.exists(upstreamEntry(fx.upstreams.upstreams.livetv, path)), inspect.exists(apqEntry(sha256(apqQuery))), scan(inspect, 'gateway:graphql_response:entry:*')]);
      return stored[0] === 1 && stored[1] === 1 && stored[2].length > 0;
    });
    return { path, query, apqQuery };
  }

  /** B and C, which never held them locally, answer all three right: from the upstreams, or from what is still true. */
  async function answeredRightByTheOthers({ path, query, apqQuery }: { path: string; query: string; apqQuery: string }, from: number): Promise<void> {
    const [, b, c] = replicas(fx);
    for (const gateway of [b, c]) {
      const rest = await get(gateway, path, token);
      expect(rest.status).toBe(200);
      expect(rest.body).toEqual({ upstream: 'livetv', url: path });
      const answer = await graphql(gateway.url, query);
      expect(answer.status, answer.text).toBe(200);
      expect(answer.data).toEqual({ movies: { total: 1, items: [{ id: 'm1', title: 'Listed' }] } });
      // A persisted query whose document is lost is asked for again (the client sends it): never a parse failure, never another document.
      const persisted = await apq(gateway, apqQuery, false);
      expectPersisted(persisted, { movies: { total: 1 } });
    }
    expect(errorsIn(log, from)).toEqual([]);
  }

  it('answers right on every replica after garbage is written over every entry in Redis', async () => {
    const [a, b, c] = replicas(fx);
    await allListening(fx.gateways);
    publicAnswers();
    const cached = await cacheOnA('garbage');
    const from = log.lines.length;
    const length = Buffer.alloc(4);
    length.writeUInt32BE(0xffffffff);
    const garbage = [randomBytes(64), Buffer.alloc(0), Buffer.from('{}'), Buffer.from('null'), Buffer.concat([length, randomBytes(16)]), Buffer.from('\u0000\u0000\u0000\u0002{}body'), Buffer.from('{"headers":"x","body":1}'), randomBytes(100_000)];
    const keys = await scan(inspect, 'gateway:*:entry:*');
    expect(keys.length).toBeGreaterThanOrEqual(3);
    for (const [index, key] of keys.entries()) await inspect.set(key, garbage[index % garbage.length] as Buffer, 'KEEPTTL');
    await answeredRightByTheOthers(cached, from);
    // Each kind of garbage, found by a replica that holds nothing of its own for that path.
    for (const [index, value] of garbage.entries()) {
      const path = `/livetv/channels/garbage-${index}`;
      await inspect.set(upstreamEntry(fx.upstreams.upstreams.livetv, path), value, 'PX', 60_000);
      for (const gateway of [a, b, c]) expect((await get(gateway, path, token)).body).toEqual({ upstream: 'livetv', url: path });
    }
    // Every replica still hears the bus, and shares again: what A stores now, B serves without the upstream.
    await allListening(fx.gateways);
    const path = '/livetv/channels/after-garbage';
    await get(a, path, token);
    await eventually('the new answer to be in Redis', async () => (await inspect.exists(upstreamEntry(fx.upstreams.upstreams.livetv, path))) === 1);
    await get(b, path, token);
    expect(fx.upstreams.upstreams.livetv.requests.filter((request) => request.url === path)).toHaveLength(1);
    expect(errorsIn(log, from)).toEqual([]);
  });

  /** The key `cache` gains in Redis while `action` runs (found by SCAN before and after). */
  async function newEntry(cache: string, action: () => Promise<void>): Promise<string> {
    const before = new Set(await scan(inspect, `gateway:${cache}:entry:*`));
    await action();
    return eventually(`a new entry in the ${cache} cache`, async () => (await scan(inspect, `gateway:${cache}:entry:*`)).find((key) => !before.has(key)));
  }

  /** The upstream cache's encoding (cache.ts): the head's length, the head, the body. */
  const encoded = (head: unknown, body = '{"forged":true}') => {
    const text = Buffer.from(JSON.stringify(head));
    const length = Buffer.alloc(4);
    length.writeUInt32BE(text.length);
    return Buffer.concat([length, text, Buffer.from(body)]);
  };

  it('answers right when an entry of today’s epoch has the wrong shape (a replica of another version, a hand edit), on REST and GraphQL', async () => {
    const [a, b, c] = replicas(fx);
    await allListening(fx.gateways);
    publicAnswers();
    const from = log.lines.length;
    const epoch = (await inspect.hget('gateway:generations', 'epoch')) ?? '';
    expect(epoch).not.toBe('');
    const later = Date.now() + 3_600_000;
    const value = { statusCode: 200, statusMessage: 'OK', headers: { 'content-type': 'application/json' }, cachedAt: Date.now(), staleAt: later, deleteAt: later, cacheControlDirectives: {} };
    const upstreamShapes: readonly unknown[] = [
      { value, method: 'GET', stamp: { epoch } },
      { value, method: 'GET', stamp: { epoch, upstreams: null } },
      { value: { statusCode: 200, deleteAt: later }, method: 'GET', stamp: { epoch, upstreams: {} } },
      { value: { ...value, headers: 5 }, method: 'GET', stamp: { epoch, upstreams: {} } },
      { value: { ...value, vary: 'accept' }, method: 'GET', stamp: { epoch, upstreams: {} } },
      { value: { ...value, statusMessage: undefined }, method: 'GET', stamp: { epoch, upstreams: {} } },
      { value: { ...value, headers: { 'not a header name': 'x' } }, method: 'GET', stamp: { epoch, upstreams: {} } },
      { value: { ...value, headers: { 'x-forged': 'line\r\nset-cookie: a=b' } }, method: 'GET', stamp: { epoch, upstreams: {} } },
      { value: { ...value, headers: { 'x-forged': { not: 'a value' } } }, method: 'GET', stamp: { epoch, upstreams: {} } },
      { value: { ...value, statusCode: '200' }, method: 'GET', stamp: { epoch, upstreams: {} } },
      { value, method: 'GET', stamp: { epoch, upstreams: { livetv: 'zero' } } },
      { value, method: 'GET', stamp: { epoch, upstreams: [] } },
    ];
    for (const [index, head] of upstreamShapes.entries()) {
      const path = `/livetv/channels/shape-${index}`;
      await inspect.set(upstreamEntry(fx.upstreams.upstreams.livetv, path), encoded(head), 'PX', 60_000);
      for (const gateway of [b, c]) {
        const answer = await get(gateway, path, token);
        expect({ shape: index, status: answer.status, body: answer.body }).toEqual({ shape: index, status: 200, body: { upstream: 'livetv', url: path } });
        expect(answer.headers.get('set-cookie')).toBeNull();
      }
    }
    const stored = { headers: [['content-type', 'application/json; charset=utf-8']], body: '{"data":{"forged":true}}', storedAtMs: Date.now(), expiresAtMs: later, operation: undefined };
    const responseShapes: readonly unknown[] = [
      { ...stored, stamp: { epoch } },
      { ...stored, stamp: { epoch, upstreams: null } },
      { ...stored, headers: [['not a header name', 'x']], stamp: { epoch, upstreams: {} } },
      { ...stored, headers: [['x-forged', 'line\r\nset-cookie: a=b']], stamp: { epoch, upstreams: {} } },
      { ...stored, operation: { name: { not: 'a name' }, type: 7 }, headers: [], body: '{"data":{"movies":null}}', stamp: { epoch, upstreams: {} } },
      { ...stored, operation: { name: 'Named', type: 'x'.repeat(10_000) }, headers: [], body: '{"data":{"movies":null}}', stamp: { epoch, upstreams: {} } },
      { ...stored, stamp: { epoch, upstreams: { ondemand: 1.5 } } },
    ];
    for (const [index, shape] of responseShapes.entries()) {
      const query = `{ movies(limit: 1, genre: "shape-${index}") { total items { id title } } }`;
      const key = await newEntry('graphql_response', async () => {
        expect((await graphql(a.url, query)).data).toEqual({ movies: { total: 1, items: [{ id: 'm1', title: 'Listed' }] } });
      });
      await inspect.set(key, JSON.stringify(shape), 'KEEPTTL');
      for (const gateway of [b, c]) {
        const answer = await graphql(gateway.url, query);
        expect({ shape: index, status: answer.status, data: answer.data }).toMatchObject({ shape: index, status: 200 });
        expect(answer.text).not.toContain('set-cookie');
      }
    }
    // Nothing read from Redis became a label of the metrics.
    for (const gateway of [b, c]) expect(await metrics(gateway)).not.toContain('x'.repeat(100));
    expect(errorsIn(log, from)).toEqual([]);
    await allListening(fx.gateways);
  });

  it('never reads more of an entry than an entry may hold: a huge value put in Redis costs a replica nothing', async () => {
    const [, b] = replicas(fx);
    await allListening(fx.gateways);
    publicAnswers();
    const path = '/livetv/channels/huge-entry';
    const huge = 64 * 1024 * 1024;
    await inspect.set(upstreamEntry(fx.upstreams.upstreams.livetv, path), Buffer.alloc(huge, 'h'), 'PX', 60_000);
    const sent = async () => Number(/total_net_output_bytes:(\d+)/.exec(await inspect.info('stats'))?.[1]);
    const before = await sent();
    expect((await get(b, path, token)).body).toEqual({ upstream: 'livetv', url: path });
    // Redis sent a replica at most an entry's bound (UPSTREAM_CACHE_MAX_ENTRY_BYTES, 1 MiB here), not the value.
    expect((await sent()) - before).toBeLessThan(4 * 1024 * 1024);
  });

  it('runs no document but the one a persisted query’s hash names, whatever Redis holds under that hash', async () => {
    const [a, b, c] = replicas(fx);
    await allListening(fx.gateways);
    publicAnswers();
    fx.upstreams.upstreams.rights.behaviour = (_req, res) => json(res, [{ id: 'basic', name: 'Basic' }]);
    const query = '{ movies(limit: 3, genre: "apq-forged") { total } }';
    expect(await apq(a, query, true)).toEqual({ status: 200, data: { movies: { total: 1 } }, codes: [] });
    await eventually('the registration to be in Redis', async () => (await inspect.exists(apqEntry(sha256(query)))) === 1);
    // Someone puts another document under the hash: B and C must not run it.
    await inspect.set(apqEntry(sha256(query)), '{ plans { id name } }', 'KEEPTTL');
    for (const gateway of [b, c]) {
      const answer = await apq(gateway, query, false);
      expect(answer).toEqual({ status: 200, codes: ['PERSISTED_QUERY_NOT_FOUND'] });
    }
    expect(fx.upstreams.upstreams.rights.requests).toEqual([]);
    // The client sends its document again, as APQ clients do: answered (the forged document never ran).
    for (const gateway of [b, c]) expect(await apq(gateway, query, true)).toEqual({ status: 200, data: { movies: { total: 1 } }, codes: [] });
    expect(fx.upstreams.upstreams.rights.requests).toEqual([]);
  });

  it('ignores junk on the invalidation bus and keeps hearing it: a change still reaches every replica, and sharing still works', async () => {
    const [a, b, c] = replicas(fx);
    await allListening(fx.gateways);
    const titles = catalogue(fx.upstreams.upstreams.ondemand);
    const from = log.lines.length;
    const message = (fields: Record<string, unknown>) => JSON.stringify({ upstream: 'ondemand', generation: 1, at: Date.now(), replica: 'someone', ...fields });
    await publishOnBus(inspect, fx.gateways, [
      'not json',
      '',
      '{',
      'null',
      '[]',
      '"ondemand"',
      '7',
      'x'.repeat(1_000_000),
      `${message({})}${' '.repeat(600)}`,
      message({ upstream: 'nope' }),
      message({ upstream: '__proto__' }),
      message({ upstream: 'constructor' }),
      message({ upstream: 'toString' }),
      message({ generation: -5 }),
      message({ generation: 1.5 }),
      message({ generation: '99' }),
      message({ generation: 1e308 }),
      '{"upstream":"ondemand","generation":9007199254740993,"at":0,"replica":"x"}',
      message({ generation: null }),
      message({ at: 'yesterday' }),
      message({ at: -1e308 }),
      message({ replica: 42 }),
      message({ replica: { id: 1 } }),
      JSON.stringify({ __proto__: { upstream: 'ondemand' }, generation: 1, at: 0, replica: 'x' }),
    ]);
    await allListening(fx.gateways);
    // Sharing still works: what A caches, B serves from Redis, no upstream call.
    expect(await titleOn(a, 'junk', token)).toBe('original');
    await eventually('the answer to be in Redis', async () => (await inspect.exists(upstreamEntry(fx.upstreams.upstreams.ondemand, '/ondemand/movies/junk'))) === 1);
    expect(await titleOn(b, 'junk', token)).toBe('original');
    expect(fx.upstreams.upstreams.ondemand.requests.filter((request) => request.url === '/ondemand/movies/junk')).toHaveLength(1);
    // And a real change still reaches every replica.
    expect(await titleOn(c, 'junk', token)).toBe('original');
    await editTitle(a, 'junk', 'changed');
    expect(titles.get('junk')).toBe('changed');
    for (const gateway of [a, b, c]) await eventually(`${gateway.url} to show the change`, async () => (await titleOn(gateway, 'junk', token)) === 'changed');
    expect(errorsIn(log, from)).toEqual([]);
  });

  it('never serves an answer again after Redis lost the generations (evicted under maxmemory, deleted), though the counts start over', async () => {
    const [a, b, c] = replicas(fx);
    await allListening(fx.gateways);
    // Live TV channels whose names change through the admin route.
    const names = new Map<string, string>();
    const livetv = fx.upstreams.upstreams.livetv;
    livetv.behaviour = async (req, res, recorded) => {
      const id = /\/channels\/([^/?]+)/.exec(req.url ?? '')?.[1] ?? '';
      if (req.method === 'PUT') names.set(id, (JSON.parse((await recorded()).body.toString()) as { name: string }).name);
      json(res, { id, name: names.get(id) ?? 'first' }, req.method === 'PUT' ? {} : { 'cache-control': 'public, max-age=60' });
    };
    const rename = async (id: string, name: string) => {
      const response = await fetch(`${a.url}/admin/livetv/channels/${id}`, { method: 'PUT', headers: { authorization: `Bearer ${await adminToken()}`, 'content-type': 'application/json' }, body: JSON.stringify({ name }) });
      expect(response.status).toBe(200);
      expect(names.get(id)).toBe(name);
    };
    const nameOn = async (gateway: RunningGateway, id: string) => (await get(gateway, `/livetv/channels/${id}`, token)).body.name;
    const heard = async (count: number, before: readonly number[]) =>
      eventually('B and C to hear the change', async () => (await Promise.all([b, c].map(received))).every((now, index) => now >= (before[index] ?? 0) + count));
    // Live TV's generation is 1 when B caches the channel as "second"…
    let before = await Promise.all([b, c].map(received));
    await rename('lost', 'second');
    await heard(1, before);
    const generation = Number(await inspect.hget('gateway:generations', 'livetv'));
    expect(await nameOn(b, 'lost')).toBe('second');
    await eventually('the answer to be in Redis', async () => (await inspect.exists(upstreamEntry(livetv, '/livetv/channels/lost'))) === 1);
    // …then it changes again (no replica asks for it meanwhile), and Redis loses the generations.
    before = await Promise.all([b, c].map(received));
    await rename('lost', 'third');
    await heard(1, before);
    await inspect.del('gateway:generations');
    // Counting starts over: as many changes as before bring live TV back to the same count.
    before = await Promise.all([b, c].map(received));
    for (let change = 0; change < generation; change += 1) await rename('other', `other ${change}`);
    await heard(generation, before);
    for (const gateway of [b, c, a]) await eventually(`${gateway.url} to answer the third name`, async () => (await nameOn(gateway, 'lost')) === 'third');
    for (const gateway of [b, c, a]) expect(await nameOn(gateway, 'lost')).toBe('third');
    await allListening(fx.gateways);
  });

  it.each([
    ['not a count', 'not a count'],
    ['the largest count Redis holds', '9223372036854775807'],
    ['the last count a number holds exactly', String(Number.MAX_SAFE_INTEGER)],
  ])('a generation in Redis that is %s neither hides a change from any replica nor stops caching for good', async (_what, value) => {
    const [a, b, c] = replicas(fx);
    await allListening(fx.gateways);
    const titles = catalogue(fx.upstreams.upstreams.ondemand);
    const id = `corrupt-${value.length}`;
    for (const gateway of [a, b, c]) expect(await titleOn(gateway, id, token)).toBe('original');
    await inspect.hset('gateway:generations', 'ondemand', value);
    await editTitle(a, id, 'changed');
    expect(titles.get(id)).toBe('changed');
    for (const gateway of [b, c, a]) await eventually(`${gateway.url} to show the change`, async () => (await titleOn(gateway, id, token)) === 'changed');
    // Every replica hears the bus again, and shares again: what B caches now, C serves from Redis.
    await allListening(fx.gateways);
    expect(await titleOn(b, `${id}-after`, token)).toBe('original');
    await eventually('the new answer to be in Redis', async () => (await inspect.exists(upstreamEntry(fx.upstreams.upstreams.ondemand, `/ondemand/movies/${id}-after`))) === 1);
    expect(await titleOn(c, `${id}-after`, token)).toBe('original');
    expect(fx.upstreams.upstreams.ondemand.requests.filter((request) => request.url === `/ondemand/movies/${id}-after`)).toHaveLength(1);
  });

  it('a forged generation far in the future neither hides a later change from any replica nor stops caching', async () => {
    const [a, b, c] = replicas(fx);
    await allListening(fx.gateways);
    const titles = catalogue(fx.upstreams.upstreams.ondemand);
    const ondemand = fx.upstreams.upstreams.ondemand;
    const from = log.lines.length;
    const real = Number((await inspect.hget('gateway:generations', 'ondemand')) ?? 0);
    await publishOnBus(inspect, fx.gateways, [JSON.stringify({ upstream: 'ondemand', generation: Number.MAX_SAFE_INTEGER - 10, at: Date.now(), replica: 'attacker' })]);
    // Caching still works after it: what B caches, C serves from Redis without the upstream.
    expect(await titleOn(b, 'future', token)).toBe('original');
    await eventually('the answer to be in Redis', async () => (await inspect.exists(upstreamEntry(ondemand, '/ondemand/movies/future'))) === 1);
    expect(await titleOn(c, 'future', token)).toBe('original');
    expect(ondemand.requests.filter((request) => request.url === '/ondemand/movies/future')).toHaveLength(1);
    // A real change through A: B and C show it (asked first, before any fresh answer replaces the one in Redis).
    await editTitle(a, 'future', 'changed');
    expect(titles.get('future')).toBe('changed');
    expect(Number(await inspect.hget('gateway:generations', 'ondemand'))).toBe(real + 1);
    for (const gateway of [c, b, a]) await eventually(`${gateway.url} to show the change`, async () => (await titleOn(gateway, 'future', token)) === 'changed');
    // Once shown, never the old title again.
    for (const gateway of [a, b, c, a, b, c]) expect(await titleOn(gateway, 'future', token)).toBe('changed');
    expect(errorsIn(log, from)).toEqual([]);
  });
});

/**
 * What Redis holds of `cache`, checked against its bounds: the bookkeeping agrees with itself (total = the
 * sizes, one size per indexed entry), and what is really there — every live entry, its key and value —
 * is indexed and within `maxBytes` all together, each within `maxEntryBytes`.
 */
async function expectWithinBounds(inspect: Redis, cache: string, maxBytes: number, maxEntryBytes: number): Promise<{ entries: number; bytes: number }> {
  const total = Number((await inspect.get(`gateway:${cache}:total`)) ?? 0);
  const sizes = await inspect.hgetall(`gateway:${cache}:sizes`);
  expect(total).toBeLessThanOrEqual(maxBytes);
  expect(Object.values(sizes).reduce((sum, size) => sum + Number(size), 0)).toBe(total);
  expect(await inspect.zcard(`gateway:${cache}:index`)).toBe(Object.keys(sizes).length);
  let bytes = 0;
  const keys = await scan(inspect, `gateway:${cache}:entry:*`);
  for (const key of keys) {
    const length = await inspect.strlen(key);
    expect(length, key).toBeLessThanOrEqual(maxEntryBytes);
    // As entries.ts counts one: the value, and its key four times over with Redis's own overhead.
    expect(sizes[key], `${key} is held but not counted`).toBe(String(length + 4 * key.length + 64));
    bytes += length + key.length;
  }
  expect(bytes).toBeLessThanOrEqual(maxBytes);
  return { entries: keys.length, bytes };
}

describe('bounds: what clients make the replicas keep', () => {
  const MAX_BYTES = 16_384;
  const MAX_ENTRY_BYTES = 2048;
  const RESPONSE_MAX_BYTES = 8192;
  const APQ_MAX_BYTES = 4096;
  const { inspect, log, fx } = useCluster({ UPSTREAM_CACHE_MAX_BYTES: String(MAX_BYTES), UPSTREAM_CACHE_MAX_ENTRY_BYTES: String(MAX_ENTRY_BYTES), GRAPHQL_RESPONSE_CACHE_MAX_BYTES: String(RESPONSE_MAX_BYTES), PERSISTED_QUERIES_MAX_BYTES: String(APQ_MAX_BYTES) });
  let token: string;
  beforeAll(async () => {
    token = await userToken('filler');
  });

  /** Live TV answers every path with `size` bytes of JSON naming it, public for a minute. */
  const sized = (size: number, headers: Record<string, string> = {}) => (req: IncomingMessage, res: ServerResponse) => {
    const head = JSON.stringify({ url: req.url, pad: '' });
    json(res, { url: req.url, pad: 'x'.repeat(Math.max(0, size - head.length)) }, { 'cache-control': 'public, max-age=60', ...headers });
  };

  it('keeps the upstream cache within UPSTREAM_CACHE_MAX_BYTES in Redis, whatever number of distinct answers the clients ask for', async () => {
    await allListening(fx.gateways);
    const livetv = fx.upstreams.upstreams.livetv;
    livetv.behaviour = sized(1000);
    const paths = Array.from({ length: 90 }, (_, index) => `/livetv/channels/fill-${index}`);
    // Ten at a time, spread over the replicas.
    for (let start = 0; start < paths.length; start += 10) {
      await Promise.all(paths.slice(start, start + 10).map(async (path, index) => expect((await get(fx.gateways[index % 3] as RunningGateway, path, token)).body.url).toBe(path)));
    }
    for (const gateway of fx.gateways) await settled(gateway, livetv, inspect);
    const held = await expectWithinBounds(inspect, 'upstream', MAX_BYTES, MAX_ENTRY_BYTES);
    // It does hold answers: the most recent ones.
    expect(held.entries).toBeGreaterThan(5);
    expect(held.bytes).toBeGreaterThan(MAX_BYTES / 2);
    expect(errorsIn(log)).toEqual([]);
  });

  it('keeps no answer larger than UPSTREAM_CACHE_MAX_ENTRY_BYTES in Redis (announced or streamed): each replica asks the upstream itself, and the client gets it whole', async () => {
    const [a, b, c] = replicas(fx);
    await allListening(fx.gateways);
    const livetv = fx.upstreams.upstreams.livetv;
    const big = (req: IncomingMessage, res: ServerResponse) => {
      if (req.url?.endsWith('streamed')) {
        res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'public, max-age=60' });
        res.write(`{"url":"${req.url}","pad":"`);
        for (let chunk = 0; chunk < 8; chunk += 1) res.write('y'.repeat(500));
        return void res.end('"}');
      }
      sized(MAX_ENTRY_BYTES + 500)(req, res);
    };
    livetv.behaviour = big;
    for (const path of ['/livetv/channels/too-big', '/livetv/channels/too-big-streamed']) {
      for (const gateway of [a, b, c]) {
        const answer = await get(gateway, path, token);
        expect(answer.body.url).toBe(path);
        expect(String(answer.body.pad).length).toBeGreaterThan(MAX_ENTRY_BYTES);
      }
      for (const gateway of [a, b, c]) await settled(gateway, livetv, inspect);
      livetv.behaviour = big;
      expect(await inspect.exists(upstreamEntry(livetv, path))).toBe(0);
      expect(livetv.requests.filter((request) => request.url === path).length).toBeGreaterThanOrEqual(3);
    }
    await expectWithinBounds(inspect, 'upstream', MAX_BYTES, MAX_ENTRY_BYTES);
  });

  it('holds at most UPSTREAM_CACHE_MAX_BYTES in a replica’s own memory too: the first of many answers is gone from both layers', async () => {
    const [a] = replicas(fx);
    await allListening(fx.gateways);
    const livetv = fx.upstreams.upstreams.livetv;
    livetv.behaviour = sized(1500);
    const first = '/livetv/channels/local-first';
    await get(a, first, token);
    await get(a, first, token);
    // Held: asked of the upstream once.
    expect(livetv.requests.filter((request) => request.url === first)).toHaveLength(1);
    // Three times the bound in distinct answers, all through A.
    for (let index = 0; index < (3 * MAX_BYTES) / 1500; index += 1) await get(a, `/livetv/channels/local-${index}`, token);
    await settled(a, livetv, inspect);
    livetv.behaviour = sized(1500);
    expect(await inspect.exists(upstreamEntry(livetv, first))).toBe(0);
    // Not in Redis any more, nor in A's memory: asked of the upstream again.
    expect((await get(a, first, token)).body.url).toBe(first);
    expect(livetv.requests.filter((request) => request.url === first)).toHaveLength(2);
  });

  it('keeps the GraphQL response cache within GRAPHQL_RESPONSE_CACHE_MAX_BYTES in Redis, however many distinct anonymous queries', async () => {
    await allListening(fx.gateways);
    fx.upstreams.upstreams.ondemand.behaviour = (req, res) => json(res, { items: [{ id: 'm1', title: 'x'.repeat(300), genres: [], free: true }], total: 1 }, { 'cache-control': 'public, max-age=60' });
    for (let index = 0; index < 60; index += 1) {
      const answer = await graphql((fx.gateways[index % 3] as RunningGateway).url, `{ movies(limit: 1, genre: "bounds-${index}") { total items { title } } }`);
      expect(answer.data).toMatchObject({ movies: { total: 1 } });
    }
    await eventually('the GraphQL response cache to hold entries in Redis', async () => (await inspect.zcard('gateway:graphql_response:index')) > 3);
    for (const gateway of fx.gateways) await settled(gateway, fx.upstreams.upstreams.livetv, inspect);
    await expectWithinBounds(inspect, 'graphql_response', RESPONSE_MAX_BYTES, MAX_ENTRY_BYTES);
  });

  it('keeps persisted queries within PERSISTED_QUERIES_MAX_BYTES in Redis, and no document over 64 KiB at all', async () => {
    const [a, b, c] = replicas(fx);
    await allListening(fx.gateways);
    fx.upstreams.upstreams.rights.behaviour = (_req, res) => json(res, [{ id: 'basic', name: 'Basic' }]);
    // A document of 70 KB that parses in a handful of tokens (a comment): run, never kept.
    const huge = `{ plans { id } } # ${'z'.repeat(70_000)}`;
    expect(await apq(a, huge, true)).toEqual({ status: 200, data: { plans: [{ id: 'basic' }] }, codes: [] });
    // Many distinct registrations, through every replica.
    for (let index = 0; index < 60; index += 1) {
      expect(await apq(fx.gateways[index % 3] as RunningGateway, `{ plans { id } } # registration ${index} ${'r'.repeat(100)}`, true)).toMatchObject({ status: 200, codes: [] });
    }
    await eventually('registrations to be in Redis', async () => (await inspect.zcard('gateway:persisted_queries:index')) > 3);
    for (const gateway of fx.gateways) await settled(gateway, fx.upstreams.upstreams.livetv, inspect);
    expect(await inspect.exists(apqEntry(sha256(huge)))).toBe(0);
    await expectWithinBounds(inspect, 'persisted_queries', APQ_MAX_BYTES, 64 * 1024);
    // The huge one is unknown to the others: the client sends it again.
    for (const gateway of [b, c]) expect(await apq(gateway, huge, false)).toEqual({ status: 200, codes: ['PERSISTED_QUERY_NOT_FOUND'] });
  });

  it('an anonymous client filling the shared response cache with long-lived answers does not keep every shorter-lived one out of it', async () => {
    const [a, b] = replicas(fx);
    await allListening(fx.gateways);
    // Plans are public for an hour, movies for a minute (as the reference services say: 300 s and 60 s).
    const plans = [{ id: 'basic', name: 'Basic' }];
    fx.upstreams.upstreams.rights.behaviour = (_req, res) => json(res, plans, { 'cache-control': 'public, max-age=3600' });
    const ondemand = fx.upstreams.upstreams.ondemand;
    const movie = { id: 'm1', title: 't'.repeat(1000), genres: [], free: true };
    ondemand.behaviour = (_req, res) => json(res, { items: [movie], total: 1 }, { 'cache-control': 'public, max-age=60' });
    // Distinct anonymous queries (a comment is enough), small answers, twice the cache's bytes in all.
    for (let index = 0; index < (2 * RESPONSE_MAX_BYTES) / 400; index += 1) {
      expect((await graphql((fx.gateways[index % 3] as RunningGateway).url, `{ plans { id name } } # filler ${index}`)).data).toEqual({ plans: plans.map(({ id, name }) => ({ id, name })) });
    }
    for (const gateway of fx.gateways) await settled(gateway, fx.upstreams.upstreams.livetv, inspect);
    // A client's ordinary query through A, then the same through B: B answers it whole from Redis.
    const query = '{ movies(limit: 1, genre: "ordinary") { total items { title } } }';
    const data = { movies: { total: 1, items: [{ title: movie.title }] } };
    expect((await graphql(a.url, query)).data).toEqual(data);
    await settled(a, fx.upstreams.upstreams.livetv, inspect);
    const hits = async () => sample(await metrics(b), 'gateway_cache_lookups_total', { cache: 'graphql_response', layer: 'shared', result: 'hit' }) ?? 0;
    const before = await hits();
    expect((await graphql(b.url, query)).data).toEqual(data);
    expect(await hits()).toBe(before + 1);
    expect(ondemand.requests).toHaveLength(1);
  });

  it('never lets a client choose the length of a key in Redis: long paths, queries and hashes are hashed', async () => {
    const [a, b] = replicas(fx);
    await allListening(fx.gateways);
    const livetv = fx.upstreams.upstreams.livetv;
    livetv.behaviour = (req, res) => json(res, { length: req.url?.length }, { 'cache-control': 'public, max-age=60' });
    fx.upstreams.upstreams.ondemand.behaviour = (_req, res) => json(res, { items: [], total: 0 }, { 'cache-control': 'public, max-age=60' });
    const longPath = `/livetv/channels/long?${'q'.repeat(6000)}`;
    expect((await get(a, longPath, token)).body).toEqual({ length: longPath.length });
    // A body of 200 KB whose parsed query is small: the response cache's key is the body.
    const longQuery = `{ movies(limit: 1, genre: "long") { total } } # ${'c'.repeat(200_000)}`;
    expect((await graphql(b.url, longQuery)).data).toEqual({ movies: { total: 0 } });
    // A hash of any length a client sends.
    const response = await fetch(`${a.url}/graphql`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ extensions: { persistedQuery: { version: 1, sha256Hash: 'h'.repeat(100_000) } } }) });
    expect(response.status).toBeLessThan(500);
    await eventually('the long answer to be in Redis', async () => (await inspect.exists(upstreamEntry(livetv, longPath))) === 1);
    for (const gateway of fx.gateways) await settled(gateway, livetv, inspect);
    const keys = await scan(inspect, '*');
    expect(Math.max(...keys.map((key) => key.length))).toBeLessThan(100);
    expect(errorsIn(log)).toEqual([]);
  });
});

describe('a change racing reads across replicas', () => {
  const { inspect, log, fx } = useCluster();
  let token: string;
  beforeAll(async () => {
    token = await userToken('racer');
  });

  it('once a replica has shown the change, it never shows the old answer again, while reads race the write on every replica', async () => {
    const [a, b, c] = replicas(fx);
    await allListening(fx.gateways);
    catalogue(fx.upstreams.upstreams.ondemand);
    for (const gateway of [a, b, c]) expect(await titleOn(gateway, 'raced', token)).toBe('original');
    // Every replica reads in a loop, on REST and GraphQL, until each has shown the change on both faces many times over.
    const seen = new Map<RunningGateway, string[]>(fx.gateways.map((gateway) => [gateway, []]));
    let writing = true;
    let after = 0;
    const reader = async (gateway: RunningGateway) => {
      const trail = seen.get(gateway) as string[];
      while (writing || trail.filter((title) => title.endsWith('changed')).length < 20) {
        trail.push(`rest:${String(await titleOn(gateway, 'raced', token))}`);
        const answer = await graphql(gateway.url, '{ movie(id: "raced") { title } }');
        trail.push(`graphql:${(answer.data as { movie: { title: string } }).movie.title}`);
        if (!writing) after += 1;
      }
    };
    const readers = fx.gateways.map(reader);
    await editTitle(a, 'raced', 'changed');
    writing = false;
    await within('every replica to show the change, many times over', Promise.all(readers));
    expect(after).toBeGreaterThan(0);
    for (const [gateway, trail] of seen) {
      // original…, then changed only: per face.
      for (const face of ['rest', 'graphql']) {
        const titles = trail.filter((entry) => entry.startsWith(`${face}:`)).map((entry) => entry.slice(face.length + 1));
        const first = titles.indexOf('changed');
        expect(first, `${gateway.url} ${face}`).toBeGreaterThanOrEqual(0);
        expect(titles.slice(first), `${gateway.url} ${face}: ${titles.join(' ')}`).toEqual(titles.slice(first).map(() => 'changed'));
      }
    }
    expect(errorsIn(log)).toEqual([]);
  });

  /**
   * On-demand as a catalogue that holds each GET of a path containing `held`: `hold` answers it in part or
   * not at all (with the titles as they were when it arrived) and gives what finishes it when the test
   * lets it go. `release` lets every one go and holds no more.
   */
  function holdingReads(held: string, hold: (res: ServerResponse, answer: unknown) => () => void = (res, answer) => () => json(res, answer, { 'cache-control': 'public, max-age=60' })) {
    const ondemand = fx.upstreams.upstreams.ondemand;
    const titles = catalogue(ondemand);
    const changing = ondemand.behaviour;
    const waiting: (() => void)[] = [];
    ondemand.behaviour = (req, res, recorded) => {
      if (req.method !== 'GET' || !req.url?.includes(held)) return changing(req, res, recorded);
      const finish = hold(res, moviesAsked(req.url, titles));
      waiting.push(() => res.writableEnded || finish());
    };
    const release = () => {
      ondemand.behaviour = changing;
      for (const finish of waiting) finish();
    };
    // Whatever happens to the test, nothing stays held.
    onTestFinished(release);
    return { waiting, release };
  }

  it('never stores an answer that was on its way while the change happened, on either face', async () => {
    const [a, b, c] = replicas(fx);
    await allListening(fx.gateways);
    const { waiting, release } = holdingReads('in-flight');
    const restAnswer = later(get(b, '/ondemand/movies/in-flight-rest', token));
    const graphqlAnswer = later(graphql(c.url, '{ movie(id: "in-flight-graphql") { title } }'));
    await eventually('both reads to reach the upstream', () => waiting.length === 2);
    const before = await Promise.all(fx.gateways.map(received));
    await editTitle(a, 'in-flight-rest', 'changed');
    await editTitle(a, 'in-flight-graphql', 'changed');
    await eventually('B and C to hear both changes', async () => (await Promise.all([b, c].map(received))).every((count, index) => count >= (before[index + 1] ?? 0) + 2));
    release();
    // What was on its way is what the upstream said then.
    expect((await restAnswer).body.title).toBe('original');
    expect((await graphqlAnswer).data).toEqual({ movie: { title: 'original' } });
    // And it was kept nowhere: every replica answers the change, on both faces, at once.
    for (const gateway of [b, c, a]) {
      expect(await titleOn(gateway, 'in-flight-rest', token)).toBe('changed');
      expect(await titleOn(gateway, 'in-flight-graphql', token)).toBe('changed');
      expect((await graphql(gateway.url, '{ movie(id: "in-flight-graphql") { title } }')).data).toEqual({ movie: { title: 'changed' } });
      expect((await graphql(gateway.url, '{ movie(id: "in-flight-rest") { title } }')).data).toEqual({ movie: { title: 'changed' } });
    }
    for (const key of await scan(inspect, 'gateway:*:entry:*')) expect((await inspect.getBuffer(key))?.toString('latin1'), key).not.toMatch(/"title":"original"|\\"title\\":\\"original\\"/);
  });

  it('never keeps an answer whose body was still arriving when the change happened', async () => {
    const [a, b, c] = replicas(fx);
    await allListening(fx.gateways);
    // The head and the start of the body go at once; the rest when the test says.
    const { waiting, release } = holdingReads('half-sent', (res, answer) => {
      const body = JSON.stringify(answer);
      res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'public, max-age=60', 'content-length': String(Buffer.byteLength(body)) });
      res.write(body.slice(0, 10));
      return () => res.end(body.slice(10));
    });
    // B has the head (its cache began to store the answer) when its client does.
    const response = await fetch(`${b.url}/ondemand/movies/half-sent`, { headers: { authorization: `Bearer ${token}` } });
    expect(response.status).toBe(200);
    expect(waiting).toHaveLength(1);
    const before = await received(b);
    await editTitle(a, 'half-sent', 'changed');
    await eventually('B to hear the change', async () => (await received(b)) > before);
    release();
    expect(((await response.json()) as { title: string }).title).toBe('original');
    for (const gateway of [b, c, a]) expect(await titleOn(gateway, 'half-sent', token)).toBe('changed');
    expect((await inspect.getBuffer(upstreamEntry(fx.upstreams.upstreams.ondemand, '/ondemand/movies/half-sent')))?.toString() ?? '').not.toContain('"title":"original"');
  });

  it('never stores a read made before the change under the stamp of another caller’s read made after it', async () => {
    const [a, b, c] = replicas(fx);
    await allListening(fx.gateways);
    const { waiting, release } = holdingReads('two-callers');
    const [alice, bob] = await Promise.all([userToken('alice'), userToken('bob')]);
    // Alice's read reaches the upstream before the change; bob's (another caller: not the same call) after it.
    const early = later(get(b, '/ondemand/movies/two-callers', alice));
    await eventually('alice’s read to reach the upstream', () => waiting.length === 1);
    const before = await received(b);
    await editTitle(a, 'two-callers', 'changed');
    await eventually('B to hear the change', async () => (await received(b)) > before);
    const late = later(get(b, '/ondemand/movies/two-callers', bob));
    await eventually('bob’s read to reach the upstream', () => waiting.length === 2);
    // The upstream answers alice's first (what it was then), then bob's.
    (waiting[0] as () => void)();
    expect((await early).body.title).toBe('original');
    release();
    expect((await late).body.title).toBe('changed');
    for (const gateway of [b, c, a]) expect(await titleOn(gateway, 'two-callers', token)).toBe('changed');
  });

  it('never hands a read made after a change the answer of a read made before it (coalescing), on the writer or any replica', async () => {
    const [a, b] = replicas(fx);
    await allListening(fx.gateways);
    const { waiting, release } = holdingReads('joined');
    // A read of the movie is on its way, through A and through B, when the change is made through A.
    const early = [later(get(a, '/ondemand/movies/joined', token)), later(get(b, '/ondemand/movies/joined', token))];
    await eventually('both reads to reach the upstream', () => waiting.length === 2);
    const before = await received(b);
    await editTitle(a, 'joined', 'changed');
    await eventually('B to hear the change', async () => (await received(b)) > before);
    // The same read again, by the same caller, after the change: its own call, not the one on its way.
    const late = [later(get(a, '/ondemand/movies/joined', token)), later(get(b, '/ondemand/movies/joined', token))];
    await eventually('the new reads to reach the upstream', () => waiting.length === 4);
    release();
    expect((await Promise.all(early)).map((answer) => answer.body.title)).toEqual(['original', 'original']);
    expect((await Promise.all(late)).map((answer) => answer.body.title)).toEqual(['changed', 'changed']);
  });
  it.each([
    ['answers 500', (res: ServerResponse) => json(res, { detail: 'database hiccup after the commit' }, {}, 500)],
    ['closes the connection', (res: ServerResponse) => void res.destroy()],
  ])('a change whose outcome the gateway cannot know (the upstream %s after making it) is not hidden by any cached answer', async (what, fail) => {
    const [a, b, c] = replicas(fx);
    await allListening(fx.gateways);
    const ondemand = fx.upstreams.upstreams.ondemand;
    const titles = catalogue(ondemand);
    const changing = ondemand.behaviour;
    const id = `unknown-${what.split(' ')[0] ?? ''}`;
    for (const gateway of [a, b, c]) expect(await titleOn(gateway, id, token)).toBe('original');
    // The change is made, then the answer fails.
    ondemand.behaviour = async (req, res, recorded) => {
      if (req.method !== 'PUT') return changing(req, res, recorded);
      titles.set(id, (JSON.parse((await recorded()).body.toString()) as { title: string }).title);
      fail(res);
    };
    const response = await fetch(`${a.url}/admin/ondemand/movies/${id}`, { method: 'PUT', headers: { authorization: `Bearer ${await adminToken()}`, 'content-type': 'application/json' }, body: JSON.stringify({ title: 'changed', genres: [], free: true }) });
    expect(response.status).toBeGreaterThanOrEqual(500);
    expect(titles.get(id)).toBe('changed');
    ondemand.behaviour = changing;
    for (const gateway of [a, b, c]) await eventually(`${gateway.url} to show the change`, async () => (await titleOn(gateway, id, token)) === 'changed');
  });
});

describe('a paused Redis (SIGSTOP: connections open, nothing answered)', () => {
  const { redis, inspect, log, fx } = useCluster({ REDIS_COMMAND_TIMEOUT_MS: '250' });
  let token: string;
  beforeAll(async () => {
    token = await userToken('patient');
  });

  const ready = async (gateway: RunningGateway) => ((await (await fetch(`${gateway.url}/ready`)).json()) as { shared: { bus: string } }).shared.bus;
  /** A request and how long it took (printed, not asserted: the machine may be busy). */
  async function timed<T>(what: string, request: () => Promise<T>, took: string[]): Promise<T> {
    const started = performance.now();
    const result = await request();
    took.push(`${what} ${Math.round(performance.now() - started)} ms`);
    return result;
  }

  it('answers every request right while Redis is paused, stops trusting the bus, and listens again once it goes on', async () => {
    const [a, b, c] = replicas(fx);
    await allListening(fx.gateways);
    const titles = catalogue(fx.upstreams.upstreams.ondemand);
    const persisted = '{ movie(id: "paused") { title } }';
    expect(await apq(a, persisted, true)).toEqual({ status: 200, data: { movie: { title: 'original' } }, codes: [] });
    for (const gateway of [a, b, c]) {
      expect(await titleOn(gateway, 'paused', token)).toBe('original');
      expect((await graphql(gateway.url, persisted)).data).toEqual({ movie: { title: 'original' } });
    }
    const from = log.lines.length;
    redis.pause();
    onTestFinished(() => redis.resume());
    const took: string[] = [];
    // At once, before any replica noticed: every face answers, right.
    for (const gateway of [a, b, c]) {
      expect(await timed('REST', () => titleOn(gateway, 'paused', token), took)).toBe('original');
      expect(await timed('REST, not cached', () => titleOn(gateway, `paused-${gateway.url.slice(-5)}`, token), took)).toBe('original');
      expect((await timed('GraphQL', () => graphql(gateway.url, persisted), took)).data).toEqual({ movie: { title: 'original' } });
      expectPersisted(await timed('APQ', () => apq(gateway, persisted, false), took), { movie: { title: 'original' } });
    }
    await eventually('every replica to say the bus is not heard', async () => (await Promise.all(fx.gateways.map(ready))).every((bus) => bus === 'deaf'));
    // A change meanwhile: every replica shows it at once, on both faces.
    await timed('change', () => editTitle(a, 'paused', 'changed while paused'), took);
    expect(titles.get('paused')).toBe('changed while paused');
    for (const gateway of [b, c, a]) {
      expect(await timed('REST after the change', () => titleOn(gateway, 'paused', token), took)).toBe('changed while paused');
      expect((await timed('GraphQL after the change', () => graphql(gateway.url, persisted), took)).data).toEqual({ movie: { title: 'changed while paused' } });
      const answer = await timed('APQ after the change', () => apq(gateway, persisted, false), took);
      expectPersisted(answer, { movie: { title: 'changed while paused' } });
    }
    console.info(`with Redis paused (REDIS_COMMAND_TIMEOUT_MS 250): ${took.join(', ')}`);

    redis.resume();
    await allListening(fx.gateways);
    expect((await Promise.all(fx.gateways.map(ready))).every((bus) => bus === 'listening')).toBe(true);
    // Never the old answer again, and sharing again: what B caches now, C serves without the upstream.
    for (const gateway of [a, b, c]) expect(await titleOn(gateway, 'paused', token)).toBe('changed while paused');
    expect(await titleOn(b, 'resumed', token)).toBe('original');
    await eventually('the new answer to be in Redis', async () => (await inspect.exists(upstreamEntry(fx.upstreams.upstreams.ondemand, '/ondemand/movies/resumed'))) === 1);
    expect(await titleOn(c, 'resumed', token)).toBe('original');
    expect(fx.upstreams.upstreams.ondemand.requests.filter((request) => request.url === '/ondemand/movies/resumed')).toHaveLength(1);
    expect(errorsIn(log, from)).toEqual([]);
  });
});

describe('TRUSTED_DOCUMENTS_MODE=require on every replica', () => {
  const manifestPath = fileURLToPath(TV_APP_MANIFEST);
  const manifest = JSON.parse(readFileSync(manifestPath, 'utf8')) as Record<string, string>;
  const { inspect, fx } = useCluster({ TRUSTED_DOCUMENTS: manifestPath, TRUSTED_DOCUMENTS_MODE: 'require' });

  it('an APQ registration through one replica lets the hash run on none', async () => {
    const [a, b, c] = replicas(fx);
    await allListening(fx.gateways);
    fx.upstreams.upstreams.rights.behaviour = (_req, res) => json(res, [{ id: 'basic', name: 'Basic' }]);
    const query = '{ plans { id name } }';
    expect(await apq(a, query, true)).toEqual({ status: 400, codes: ['PERSISTED_DOCUMENT_NOT_FOUND'] });
    for (const gateway of [a, b, c]) expect(await apq(gateway, query, false)).toEqual({ status: 400, codes: ['PERSISTED_DOCUMENT_NOT_FOUND'] });
    expect(await inspect.exists(apqEntry(sha256(query)))).toBe(0);
    expect(fx.upstreams.all().filter((request) => request.url !== '/health')).toEqual([]);
  });

  it('a document found in Redis under a hash (another replica, in another mode, registered it) runs on none', async () => {
    await allListening(fx.gateways);
    fx.upstreams.upstreams.rights.behaviour = (_req, res) => json(res, [{ id: 'basic', name: 'Basic' }]);
    const query = '{ plans { id } }';
    await inspect.set(apqEntry(sha256(query)), query, 'PX', 60_000);
    for (const gateway of fx.gateways) expect(await apq(gateway, query, false)).toEqual({ status: 400, codes: ['PERSISTED_DOCUMENT_NOT_FOUND'] });
    expect(fx.upstreams.all().filter((request) => request.url !== '/health')).toEqual([]);
    // A manifest's document, by its APQ hash, does run everywhere.
    fx.upstreams.upstreams.livetv.behaviour = (_req, res) => json(res, [], { 'cache-control': 'public, max-age=30' });
    const [id, text] = Object.entries(manifest).find(([, document]) => document.startsWith('query LiveGuide')) ?? ['', ''];
    for (const gateway of fx.gateways) {
      const response = await fetch(`${gateway.url}/graphql`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ extensions: { persistedQuery: { version: 1, sha256Hash: id.replace(/^sha256:/, '') } } }) });
      expect(await response.json()).toEqual({ data: { channels: [] } });
    }
    expect(sha256(text)).toBe(id.replace(/^sha256:/, ''));
  });
});

describe('bounds per identity: what one subject makes the replicas keep of its GraphQL responses', () => {
  // Half of it for the responses to tokens (32 KiB), a sixteenth of that half for any one subject (2 KiB).
  const RESPONSE_MAX_BYTES = 64 * 1024;
  const { inspect, fx } = useCluster({ GRAPHQL_RESPONSE_CACHE_MAX_BYTES: String(RESPONSE_MAX_BYTES) });

  it('keeps one subject, whatever its tokens, queries and replicas, within its share in Redis, and another user’s response stays shared', async () => {
    const [a, b] = replicas(fx);
    await allListening(fx.gateways);
    const users = fx.upstreams.upstreams.users;
    users.behaviour = (req, res) => json(res, { id: req.headers['x-user-id'], username: `u${String(req.headers['x-user-id'])}-${'x'.repeat(900)}`, roles: ['user'] }, { 'cache-control': 'private, max-age=60' });
    const alice = await userToken('alice');
    const query = '{ me { id username } }';
    expect((await graphql(a.url, query, { token: alice })).data).toMatchObject({ me: { id: 'alice' } });
    await eventually('alice’s response in Redis', async () => (await inspect.zcard('gateway:graphql_response:personal:index')) === 1);

    // One subject, four tokens, 60 distinct queries over the three replicas: some 60 KB of responses.
    const attacker = await Promise.all([0, 1, 2, 3].map((index) => signToken({ sub: 'mallory', roles: ['user'], jti: `t${index}` })));
    for (let index = 0; index < 60; index += 1) {
      const answer = await graphql((fx.gateways[index % 3] as RunningGateway).url, `{ q${index}: me { id username } }`, { token: attacker[index % 4] as string });
      expect(answer.data).toMatchObject({ [`q${index}`]: { id: 'mallory' } });
    }
    for (const gateway of fx.gateways) await settled(gateway, fx.upstreams.upstreams.livetv, inspect);
    const held = await expectWithinBounds(inspect, 'graphql_response:personal', RESPONSE_MAX_BYTES / 2, 1024 * 1024);
    const mallory = await inspect.zrange(`gateway:graphql_response:personal:owner:${sha256('mallory', 'base64url')}`, 0, -1);
    const sizes = await inspect.hmget('gateway:graphql_response:personal:sizes', ...mallory);
    const kept = sizes.filter((size) => size !== null).map(Number);
    expect(kept.length).toBeGreaterThan(0);
    expect(kept.reduce((sum, size) => sum + size, 0)).toBeLessThanOrEqual(RESPONSE_MAX_BYTES / 2 / 16);
    // Alice's and mallory's latest: nothing else.
    expect(held.entries).toBeLessThanOrEqual(1 + kept.length);

    // Alice through B: from Redis, no upstream call.
    const calls = users.requests.length;
    const hits = async () => sample(await metrics(b), 'gateway_cache_lookups_total', { cache: 'graphql_response', layer: 'shared', result: 'hit' }) ?? 0;
    const before = await hits();
    expect((await graphql(b.url, query, { token: alice })).data).toMatchObject({ me: { id: 'alice' } });
    expect(await hits()).toBe(before + 1);
    expect(users.requests).toHaveLength(calls);
  });
});

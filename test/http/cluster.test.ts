/**
 * The gateway as a cluster, from the client's side: three gateway processes on one password-protected
 * redis-server, in front of one set of reference services (each behind a counting proxy, so what the
 * upstreams saw is known). Every replica answers alike: what one cached, the others serve; a change
 * through one is seen by all; a persisted query registered on one is known to all; and with Redis gone,
 * every request is still answered correctly.
 */
import { createHash } from 'node:crypto';
import { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { IN_MEMORY } from '../../services/lib/environment.js';
import { startReferenceServices } from '../../services/registry.js';
import { upstreamEnvironment } from '../../shared/upstreams.js';
import { startCountingProxies } from '../helpers/counting-proxy.js';
import { useFixture } from '../helpers/fixture.js';
import { graphql } from '../helpers/graphql.js';
import { sample } from '../helpers/metrics.js';
import { spawnGateway, type GatewayProcess } from '../helpers/process.js';
import { startRedis, type RunningRedis } from '../helpers/redis.js';
import { adminToken, TEST_SECRET, userToken } from '../helpers/tokens.js';
import { eventually } from '../helpers/wait.js';

const PASSWORD = 'cluster-redis-pa55word';

interface Cluster {
  readonly redis: RunningRedis;
  /** Starts a Redis again where the stopped one was (same port, same password, nothing in it). */
  restartRedis(): Promise<void>;
  readonly gateways: readonly GatewayProcess[];
  readonly counting: Awaited<ReturnType<typeof startCountingProxies>>;
  readonly inspect: Redis;
  close(): Promise<void>;
}

async function startCluster(): Promise<Cluster> {
  const services = await startReferenceServices({ anyPorts: true, env: { LOG_LEVEL: 'silent', JWT_SECRET_KEY: TEST_SECRET, DATA_DIR: IN_MEMORY } });
  const counting = await startCountingProxies(services.urls);
  let redis = await startRedis({ password: PASSWORD });
  const port = Number(new URL(redis.url).port);
  const env = {
    JWT_SECRET_KEY: TEST_SECRET,
    REDIS_URL: redis.url,
    REDIS_PASSWORD: PASSWORD,
    LOG_FORMAT: 'json',
    NODE_ENV: 'test',
    REGISTRATIONS_PER_HOUR: '0',
    UPSTREAM_BREAKER_FAILURES: '0',
    ...upstreamEnvironment(counting.urls),
  };
  const gateways = await Promise.all([0, 1, 2].map(() => spawnGateway(env)));
  // What the test reads of Redis itself (never through a gateway).
  const inspect = new Redis(redis.url, { password: PASSWORD, lazyConnect: true, maxRetriesPerRequest: 1 });
  inspect.on('error', () => undefined);
  return {
    get redis() {
      return redis;
    },
    async restartRedis() {
      redis = await startRedis({ password: PASSWORD, port });
    },
    gateways,
    counting,
    inspect,
    async close() {
      inspect.disconnect();
      await Promise.all(gateways.map((gateway) => gateway.stop()));
      await redis.stop();
      await counting.close();
      await services.close();
    },
  };
}

interface Readiness {
  readonly shared: { readonly bus: string; readonly redis?: Record<string, string> };
}

const readiness = async (gateway: GatewayProcess) => (await (await fetch(`${gateway.url}/ready`)).json()) as Readiness;

/** Until every replica hears the bus (and so trusts what is cached). */
const allListening = (cluster: Cluster) =>
  eventually('every replica to hear the invalidation bus', async () => (await Promise.all(cluster.gateways.map(readiness))).every((ready) => ready.shared.bus === 'listening'));

/** The invalidations `gateway` received from the others so far. */
const busMessagesReceived = async (gateway: GatewayProcess) => sample(await (await fetch(`${gateway.url}/metrics`)).text(), 'gateway_cache_bus_messages_total', { direction: 'received' }) ?? 0;

/** The upstream calls that reached on-demand for `path` (as the counting proxy saw them). */
const callsFor = (cluster: Cluster, path: string) => cluster.counting.calls.filter((call) => call.upstream === 'ondemand' && call.url === path).length;

/** Until the shared layer of `cache` holds at least `count` entries (a replica stores without waiting for Redis). */
const sharedEntries = (cluster: Cluster, cache: string, count: number) =>
  eventually(`${count} entries in the shared ${cache} cache`, async () => (await cluster.inspect.zcard(`gateway:${cache}:index`)) >= count);

async function movieTitle(gateway: GatewayProcess, id: string, token: string): Promise<string> {
  const response = await fetch(`${gateway.url}/ondemand/movies/${id}`, { headers: { authorization: `Bearer ${token}` } });
  expect(response.status).toBe(200);
  return ((await response.json()) as { title: string }).title;
}

async function graphqlTitle(gateway: GatewayProcess, id: string): Promise<string | undefined> {
  const answer = await graphql(gateway.url, `{ movie(id: "${id}") { title } }`);
  expect(answer.errors).toBeUndefined();
  return (answer.data as { movie: { title: string } }).movie.title;
}

async function editMovie(gateway: GatewayProcess, id: string, title: string): Promise<void> {
  const response = await fetch(`${gateway.url}/admin/ondemand/movies/${id}`, {
    method: 'PUT',
    headers: { authorization: `Bearer ${await adminToken()}`, 'content-type': 'application/json' },
    body: JSON.stringify({ title, genres: ['drama'], free: true }),
  });
  expect(response.status).toBe(200);
}

/** The access lines of `gateway` for `path`, once there are `count`. */
const accessLinesNow = (gateway: GatewayProcess, path: string) => gateway.logLines().filter((line) => line.path === path && typeof line.status === 'number');
const accessLines = (gateway: GatewayProcess, path: string, count = 1) =>
  eventually(`${count} access lines for ${path}`, () => {
    const lines = accessLinesNow(gateway, path);
    return lines.length >= count && lines;
  });
/** The access line of what `act` asks `gateway` for `path` (whatever the file's other tests, in any order, asked it before). */
async function accessLineOf(gateway: GatewayProcess, path: string, act: () => Promise<unknown>) {
  const seen = accessLinesNow(gateway, path).length;
  await act();
  return (await accessLines(gateway, path, seen + 1))[seen];
}

describe('three gateway processes on one Redis with a password', () => {
  const cluster = useFixture(startCluster, (running) => running.close());

  it('serves from every replica what one of them cached, with no upstream call, and says so in the access log', async () => {
    const [a, b, c] = cluster.gateways as [GatewayProcess, GatewayProcess, GatewayProcess];
    await allListening(cluster);
    const token = await userToken('1');
    const before = await cluster.inspect.zcard('gateway:upstream:index');
    const title = await movieTitle(a, 'm5', token);
    expect(callsFor(cluster, '/ondemand/movies/m5')).toBe(1);
    await sharedEntries(cluster, 'upstream', before + 1);
    const line = await accessLineOf(b, '/ondemand/movies/m5', async () => expect(await movieTitle(b, 'm5', token)).toBe(title));
    expect(await movieTitle(c, 'm5', token)).toBe(title);
    expect(callsFor(cluster, '/ondemand/movies/m5')).toBe(1);
    expect(line?.upstream).toEqual([expect.objectContaining({ service: 'ondemand', status: 200, cache: 'shared' })]);

    // A whole GraphQL response too: B answers it from the shared layer, with its age, executing nothing.
    const responses = await cluster.inspect.zcard('gateway:graphql_response:index');
    expect(await graphqlTitle(a, 'm9')).toBeDefined();
    await sharedEntries(cluster, 'graphql_response', responses + 1);
    const calls = cluster.counting.calls.length;
    const graphqlLine = await accessLineOf(b, '/graphql', async () => {
      const replayed = await fetch(`${b.url}/graphql`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ query: '{ movie(id: "m9") { title } }' }) });
      expect(replayed.status).toBe(200);
      expect(replayed.headers.get('age')).not.toBeNull();
    });
    expect(cluster.counting.calls.length).toBe(calls);
    expect(graphqlLine?.cache).toBe('shared');
  });

  it('shows a change made through one replica on every other, REST and GraphQL, long before any max-age', async () => {
    const [a, b, c] = cluster.gateways as [GatewayProcess, GatewayProcess, GatewayProcess];
    await allListening(cluster);
    const token = await userToken('1');
    // Every replica has the movie cached, as REST and as a GraphQL response (max-age 60 s).
    for (const gateway of [a, b, c]) {
      await movieTitle(gateway, 'm13', token);
      await graphqlTitle(gateway, 'm13');
    }
    await editMovie(a, 'm13', 'Edited through A');
    for (const gateway of [b, c]) {
      await eventually(`${gateway.url} to show the edit on REST and GraphQL`, async () => (await movieTitle(gateway, 'm13', token)) === 'Edited through A' && (await graphqlTitle(gateway, 'm13')) === 'Edited through A');
    }
    // And through GraphQL on B: A and C follow.
    const edited = await graphql(b.url, 'mutation { adminUpdateMovie(id: "m13", input: { title: "Edited through B", genres: ["drama"], free: true }) { title } }', { token: await adminToken() });
    expect(edited.errors).toBeUndefined();
    for (const gateway of [a, c]) {
      await eventually(`${gateway.url} to show the GraphQL edit`, async () => (await movieTitle(gateway, 'm13', token)) === 'Edited through B' && (await graphqlTitle(gateway, 'm13')) === 'Edited through B');
    }
    // Once seen, never the old title again, on any replica.
    for (const gateway of [a, b, c]) expect(await graphqlTitle(gateway, 'm13')).toBe('Edited through B');
  });

  it('shares a token’s GraphQL response between replicas, to that token alone, never writing a token to Redis; a write through another replica outdates it on all', async () => {
    const [a, b, c] = cluster.gateways as [GatewayProcess, GatewayProcess, GatewayProcess];
    await allListening(cluster);
    const [alice, bob] = await Promise.all([userToken('1'), userToken('2')]);
    const playable = async (gateway: GatewayProcess, token: string) => {
      const response = await fetch(`${gateway.url}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
        body: JSON.stringify({ query: '{ movies(limit: 4) { items { id entitlement { canPlay } } } }' }),
      });
      expect(response.status).toBe(200);
      const { data } = (await response.json()) as { data: { movies: { items: { id: string; entitlement: { canPlay: boolean } }[] } } };
      return { age: response.headers.get('age'), canPlay: Object.fromEntries(data.movies.items.map((item) => [item.id, item.entitlement.canPlay])) };
    };
    const stored = await cluster.inspect.zcard('gateway:graphql_response:personal:index');
    const first = await playable(a, bob);
    // Bob has no plan: the free m1 only.
    expect(first.canPlay).toMatchObject({ m1: true, m2: false });
    await sharedEntries(cluster, 'graphql_response:personal', stored + 1);
    const calls = cluster.counting.calls.length;
    expect(await playable(b, bob)).toEqual({ age: expect.any(String), canPlay: first.canPlay });
    expect(cluster.counting.calls.length).toBe(calls);
    // Alice on the same replica: her own answer (premium), from the upstreams.
    expect((await playable(b, alice)).canPlay).toMatchObject({ m1: true, m2: true });
    expect(cluster.counting.calls.length).toBeGreaterThan(calls);

    // Whoever reads Redis finds no token, nor a token's signature.
    const written: string[] = [];
    for (const key of await cluster.inspect.keys('gateway:*')) {
      written.push(key);
      const type = await cluster.inspect.type(key);
      if (type === 'string') written.push((await cluster.inspect.getBuffer(key))?.toString('latin1') ?? '');
      if (type === 'hash') written.push(JSON.stringify(await cluster.inspect.hgetall(key)));
      if (type === 'zset') written.push(JSON.stringify(await cluster.inspect.zrange(key, 0, -1)));
    }
    for (const token of [alice, bob]) {
      const signature = token.split('.')[2] ?? token;
      expect(written.filter((text) => text.includes(token) || text.includes(signature))).toEqual([]);
    }

    // An admin grants bob m2 through C: A and B stop answering his stored response.
    const grant = await fetch(`${c.url}/admin/rights/entitlements`, {
      method: 'POST',
      headers: { authorization: `Bearer ${await adminToken()}`, 'content-type': 'application/json' },
      body: JSON.stringify({ userId: '2', contentId: 'movie:m2' }),
    });
    expect(grant.status).toBe(201);
    for (const gateway of [a, b]) await eventually(`${gateway.url} to show bob's grant`, async () => (await playable(gateway, bob)).canPlay.m2 === true);
    for (const gateway of [a, b, c]) expect((await playable(gateway, bob)).canPlay).toMatchObject({ m1: true, m2: true });
  });

  it('knows on every replica a persisted query registered on one', async () => {
    const [a, b, c] = cluster.gateways as [GatewayProcess, GatewayProcess, GatewayProcess];
    await allListening(cluster);
    const query = '{ movie(id: "m17") { id title } }';
    const extensions = { persistedQuery: { version: 1, sha256Hash: createHash('sha256').update(query).digest('hex') } };
    const post = (gateway: GatewayProcess, body: unknown) => fetch(`${gateway.url}/graphql`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }).then(async (response) => ({ status: response.status, body: (await response.json()) as { data?: unknown; errors?: { extensions?: { code?: string } }[] } }));
    // Unknown anywhere until registered.
    expect((await post(b, { extensions })).body.errors?.[0]?.extensions?.code).toBe('PERSISTED_QUERY_NOT_FOUND');
    const registered = await post(a, { query, extensions });
    expect(registered.body.data).toEqual({ movie: { id: 'm17', title: expect.any(String) } });
    await sharedEntries(cluster, 'persisted_queries', 1);
    for (const gateway of [b, c]) expect((await post(gateway, { extensions })).body).toEqual({ data: registered.body.data });
  });

  it('registers a persisted query whose registration was answered from a stored response, for every replica', async () => {
    const [a, b, c] = cluster.gateways as [GatewayProcess, GatewayProcess, GatewayProcess];
    await allListening(cluster);
    const query = '{ movie(id: "m33") { id } }';
    const extensions = { persistedQuery: { version: 1, sha256Hash: createHash('sha256').update(query).digest('hex') } };
    const post = (gateway: GatewayProcess, body: unknown) => fetch(`${gateway.url}/graphql`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }).then(async (response) => (await response.json()) as { data?: unknown; errors?: { extensions?: { code?: string } }[] });
    const responses = await cluster.inspect.zcard('gateway:graphql_response:index');
    const registered = await post(a, { query, extensions });
    await sharedEntries(cluster, 'graphql_response', responses + 1);
    // The registration is forgotten (expired, evicted) while the response to it is still stored.
    for (const key of await cluster.inspect.keys('gateway:persisted_queries:entry:*')) await cluster.inspect.del(key);
    // B answers the registration from the stored response, without Apollo: it registers the document itself.
    expect(await post(b, { query, extensions })).toEqual(registered);
    await eventually('the document registered again, for every replica', async () => JSON.stringify(await post(c, { extensions })) === JSON.stringify(registered));
  });

  it('never serves an answer stamped before Redis lost its generations (evicted or deleted), and shares again after', async () => {
    const [a, b, c] = cluster.gateways as [GatewayProcess, GatewayProcess, GatewayProcess];
    await allListening(cluster);
    const token = await userToken('1');
    // Generations past 1 first: after the loss, the next change counts from 1 again, below what replicas know.
    for (const title of ['First', 'Second']) await editMovie(a, 'm29', title);
    const entries = await cluster.inspect.zcard('gateway:upstream:index');
    await allListening(cluster);
    await movieTitle(a, 'm29', token);
    await sharedEntries(cluster, 'upstream', entries + 1);
    // The generations go, the entries stay (what an eviction of that one key would do).
    await cluster.inspect.del('gateway:generations');
    const heard = await Promise.all([b, c].map(busMessagesReceived));
    await editMovie(a, 'm29', 'Edited after the generations were lost');
    // Once the change's message arrived (no waiting for the periodic catch-up), no stale answer.
    for (const [index, gateway] of [b, c].entries()) {
      await eventually(`${gateway.url} to hear the change`, async () => (await busMessagesReceived(gateway)) > (heard[index] ?? 0));
      expect(await movieTitle(gateway, 'm29', token)).toBe('Edited after the generations were lost');
    }
    await allListening(cluster);
    expect(await movieTitle(c, 'm29', token)).toBe('Edited after the generations were lost');
  });

  it('answers every request through a Redis outage, never stale after a change made meanwhile, and shares again once Redis is back', async () => {
    const [a, b, c] = cluster.gateways as [GatewayProcess, GatewayProcess, GatewayProcess];
    await allListening(cluster);
    const token = await userToken('1');
    for (const gateway of [a, b, c]) await movieTitle(gateway, 'm21', token);

    await cluster.redis.stop();
    await eventually('every replica to stop trusting the bus', async () => (await Promise.all(cluster.gateways.map(readiness))).every((ready) => ready.shared.bus === 'deaf' && ready.shared.redis?.commands === 'down'));
    // Requests on every face are still answered, from the upstreams.
    for (const gateway of [a, b, c]) {
      expect(await movieTitle(gateway, 'm1', token)).toEqual(expect.any(String));
      expect(await graphqlTitle(gateway, 'm1')).toEqual(expect.any(String));
    }
    await editMovie(a, 'm21', 'Edited during the outage');
    for (const gateway of [a, b, c]) {
      expect(await movieTitle(gateway, 'm21', token)).toBe('Edited during the outage');
      expect(await graphqlTitle(gateway, 'm21')).toBe('Edited during the outage');
    }

    await cluster.restartRedis();
    await allListening(cluster);
    // Sharing resumes without a restart: what A caches now, B serves without an upstream call.
    expect(await movieTitle(a, 'm25', token)).toEqual(expect.any(String));
    await sharedEntries(cluster, 'upstream', 1);
    const calls = callsFor(cluster, '/ondemand/movies/m25');
    expect(await movieTitle(b, 'm25', token)).toEqual(expect.any(String));
    expect(callsFor(cluster, '/ondemand/movies/m25')).toBe(calls);
    // An outage is logged once, when it starts, and once when it ends: not once a request or a retry.
    for (const gateway of [a, b, c]) {
      const messages = gateway.logLines().map((line) => String(line.msg));
      const outages = messages.filter((message) => message.startsWith('Redis unavailable')).length;
      expect(outages).toBeGreaterThanOrEqual(1);
      expect(messages.filter((message) => message === 'Redis answers again: shared state resumes')).toHaveLength(outages);
      expect(gateway.stdout().join('\n')).not.toContain(PASSWORD);
    }
  });
});

import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GraphQLSchema, printSchema } from 'graphql';
import { beforeAll, describe, expect, it } from 'vitest';
import { createTvClient, GatewayGraphQLError } from '../../examples/tv-app/client.js';
import { reviewSchemaChange } from '../../scripts/lib/schema-changes.js';
import { HomeScreen, PlayMovie } from '../../examples/tv-app/operations.js';
import { useStack } from '../helpers/stack.js';
import { graphql, onlyError } from '../helpers/graphql.js';
import { login } from '../helpers/login.js';

// These suites count upstream calls: the shared cache would answer a repeated query without one.
const fx = useStack({ upstreams: 'reference', counting: true, env: { NODE_ENV: 'development', UPSTREAM_CACHE_MAX_BYTES: '0' } });
const tokens: Record<'alice' | 'bob' | 'admin', string> = { alice: '', bob: '', admin: '' };

beforeAll(async () => {
  for (const name of ['alice', 'bob', 'admin'] as const) tokens[name] = await login(fx.gateway.url, name, 'graphql');
});

const MOVIE = 'id title year genres durationMinutes free';

describe('the served schema', () => {
  it('changes nothing breaking that CHANGELOG.md does not announce (GraphQL Inspector; npm run schema says which)', async () => {
    const read = (file: string) => readFileSync(new URL(`../../${file}`, import.meta.url), 'utf8');
    const review = await reviewSchemaChange(read('schema.graphql'), fx.gateway.gateway.graphql?.schema ?? new GraphQLSchema({}), read('CHANGELOG.md'));
    expect(review.unannounced).toEqual([]);
  });

  it('is the committed schema.graphql', () => {
    expect(`${printSchema(fx.gateway.gateway.graphql?.schema ?? new GraphQLSchema({}))}\n`).toBe(readFileSync(new URL('../../schema.graphql', import.meta.url), 'utf8'));
  });

  it('is what the typed client example was generated from (npm run schema regenerates both)', () => {
    const output = join(mkdtempSync(join(tmpdir(), 'tada-')), 'graphql-env.d.ts');
    const result = spawnSync('node_modules/.bin/gql-tada', ['generate-output', '--output', output], { encoding: 'utf8' });
    expect(result.status, result.stderr).toBe(0);
    expect(readFileSync(output, 'utf8')).toBe(readFileSync(new URL('../../examples/tv-app/graphql-env.d.ts', import.meta.url), 'utf8'));
  });

  it('serves the typed TV-app client example', async () => {
    const request = createTvClient(fx.gateway.url, () => tokens.bob);
    const home = await request(HomeScreen, { limit: 4 });
    expect(home.movies?.items.map((movie) => [movie.id, movie.entitlement.canPlay])).toEqual([
      ['m1', true],
      ['m2', false],
      ['m3', false],
      ['m4', false],
    ]);
    const error = await request(PlayMovie, { id: 'm2' }).catch((failure: unknown) => failure);
    expect(error).toBeInstanceOf(GatewayGraphQLError);
    expect((error as GatewayGraphQLError).code).toBe('FORBIDDEN');
  });
});

describe('open fields, for anyone', () => {
  it('lists movies with the total, one by id, and null for an unknown id', async () => {
    const answer = await graphql(fx.gateway.url, `{ movies(limit: 3, offset: 1) { total items { ${MOVIE} } } movie(id: "m2") { id title } none: movie(id: "nope") { id } }`);
    expect(answer.errors).toBeUndefined();
    expect(answer.data).toMatchObject({
      movies: { total: 50, items: [{ id: 'm2' }, { id: 'm3' }, { id: 'm4' }] },
      movie: { id: 'm2', title: 'The Crimson Harbor' },
      none: null,
    });
  });

  it('filters movies by genre', async () => {
    const answer = await graphql(fx.gateway.url, '{ movies(genre: "drama", limit: 100) { total items { genres } } }');
    const { items, total } = answer.data?.movies as { items: { genres: string[] }[]; total: number };
    expect(total).toBe(items.length);
    expect(items.every((movie) => movie.genres.includes('drama'))).toBe(true);
  });

  it('lists channels with what is on now and their schedules, and one channel by id', async () => {
    const answer = await graphql(fx.gateway.url, '{ channels { id name number free nowPlaying { id title start end } } channel(id: "c3") { id schedule { start end } } none: channel(id: "x") { id } }');
    expect(answer.errors).toBeUndefined();
    const channels = answer.data?.channels as { nowPlaying: { start: string; end: string } }[];
    expect(channels.length).toBeGreaterThanOrEqual(20);
    for (const { nowPlaying } of channels) {
      expect(Date.parse(nowPlaying.start)).toBeLessThanOrEqual(Date.now());
      expect(Date.parse(nowPlaying.end)).toBeGreaterThan(Date.now());
      expect(nowPlaying.start).toMatch(/^\d{4}-\d\d-\d\dT/);
    }
    const schedule = (answer.data?.channel as { schedule: { end: string }[] }).schedule;
    expect(Date.parse(schedule.at(-1)?.end ?? '')).toBeGreaterThanOrEqual(Date.now() + 24 * 3600_000);
    expect(answer.data?.none).toBeNull();
  });

  it('lists the plans and searches, resolving each hit to its movie or channel', async () => {
    const answer = await graphql(fx.gateway.url, '{ plans { id name } search(q: "silent", limit: 2) { total items { kind id title movie { id free } channel { id } } } news: search(q: "news") { items { kind channel { name } movie { id } } } }');
    expect(answer.errors).toBeUndefined();
    expect(answer.data?.plans).toEqual([
      { id: 'basic', name: 'Basic' },
      { id: 'premium', name: 'Premium' },
    ]);
    expect(answer.data?.search).toMatchObject({ total: 5, items: [{ kind: 'movie', movie: { id: expect.any(String) }, channel: null }, { kind: 'movie' }] });
    expect(answer.data?.news).toMatchObject({ items: [{ kind: 'channel', channel: { name: 'News 24' }, movie: null }] });
  });

  it('logs in and registers', async () => {
    const login = await graphql(fx.gateway.url, 'mutation { login(username: "bob", password: "bob-password") { access_token token_type expires_in refresh_token } }');
    expect(login.data?.login).toMatchObject({ token_type: 'bearer', expires_in: 3600, access_token: expect.stringMatching(/^ey/), refresh_token: expect.any(String) });
    const register = await graphql(fx.gateway.url, 'mutation { register(username: "gina", password: "gina-password", email: "gina@example.com") { id username email roles subscription { planId } } }');
    expect(register.data?.register).toMatchObject({ username: 'gina', email: 'gina@example.com', roles: ['user'], subscription: null });
  });
});

describe('fields that need a token', () => {
  it.each([
    { field: 'me', query: '{ me { id } }', service: 'users' },
    { field: 'playMovie', query: '{ playMovie(id: "m1") { url } }', service: 'ondemand' },
    { field: 'playChannel', query: '{ playChannel(id: "c1") { url } }', service: 'livetv' },
    { field: 'subscribe', query: 'mutation { subscribe(planId: "basic") { planId } }', service: 'rights' },
    { field: 'Movie.entitlement', query: '{ movies(limit: 2) { items { entitlement { canPlay } } } }', service: 'rights' },
    { field: 'Channel.entitlement', query: '{ channels { entitlement { canPlay } } }', service: 'rights' },
  ] as const)('$field is UNAUTHENTICATED without a token, and $service is not called', async ({ query, service }) => {
    const answer = await graphql(fx.gateway.url, query);
    expect(onlyError(answer).code).toBe('UNAUTHENTICATED');
    expect(fx.counting.count(service)).toBe(0);
  });

  it('answers me with the subscription', async () => {
    const alice = await graphql(fx.gateway.url, '{ me { id username email roles subscription { planId status } } }', { token: tokens.alice });
    expect(alice.data?.me).toEqual({ id: '1', username: 'alice', email: 'alice@example.com', roles: ['user'], subscription: { planId: 'premium', status: 'active' } });
    const bob = await graphql(fx.gateway.url, '{ me { username subscription { planId } } }', { token: tokens.bob });
    expect(bob.data?.me).toEqual({ username: 'bob', subscription: null });
  });

  it('plays for the entitled and refuses the others with FORBIDDEN', async () => {
    const alice = await graphql(fx.gateway.url, '{ movie: playMovie(id: "m2") { url expiresAt } live: playChannel(id: "c2") { url expiresAt } }', { token: tokens.alice });
    expect(alice.errors).toBeUndefined();
    expect(alice.data?.movie).toMatchObject({ url: expect.stringMatching(/^https:\/\/cdn\.tv\.example\/vod\/m2\//) });
    expect(Date.parse((alice.data?.live as { expiresAt: string }).expiresAt)).toBeGreaterThan(Date.now());
    const bob = await graphql(fx.gateway.url, '{ playMovie(id: "m2") { url } }', { token: tokens.bob });
    expect(onlyError(bob)).toEqual({ code: 'FORBIDDEN', message: 'Not entitled to play this movie', path: ['playMovie'] });
    const free = await graphql(fx.gateway.url, '{ playMovie(id: "m1") { url } }', { token: tokens.bob });
    expect(free.errors).toBeUndefined();
  });

  it('gives the entitlement truth table: alice every movie and channel, bob only the free ones', async () => {
    const query = '{ movies(limit: 100) { items { id free entitlement { canPlay reason } } } channels { id free entitlement { canPlay reason } } }';
    type Item = { id: string; free: boolean; entitlement: { canPlay: boolean; reason: string } };
    for (const [user, expected] of [
      ['alice', (item: Item) => ({ canPlay: true, reason: item.free ? 'free' : 'subscription' })],
      ['bob', (item: Item) => ({ canPlay: item.free, reason: item.free ? 'free' : 'subscription_required' })],
    ] as const) {
      const answer = await graphql(fx.gateway.url, query, { token: tokens[user] });
      expect(answer.errors).toBeUndefined();
      const items = [...(answer.data?.movies as { items: Item[] }).items, ...(answer.data?.channels as Item[])];
      expect(items.length).toBeGreaterThanOrEqual(70);
      for (const item of items) expect(item.entitlement, `${user} ${item.id}`).toEqual(expected(item));
    }
  });

  it('subscribes, after which the plan entitles', async () => {
    const carolToken = await (async () => {
      await graphql(fx.gateway.url, 'mutation { register(username: "hank", password: "hank-password", email: "hank@example.com") { id } }');
      return login(fx.gateway.url, 'hank', 'graphql');
    })();
    const before = await graphql(fx.gateway.url, '{ movie(id: "m2") { entitlement { canPlay } } }', { token: carolToken });
    expect(before.data?.movie).toEqual({ entitlement: { canPlay: false } });
    const subscribed = await graphql(fx.gateway.url, 'mutation { subscribe(planId: "basic") { planId status } }', { token: carolToken });
    expect(subscribed.data?.subscribe).toEqual({ planId: 'basic', status: 'active' });
    const after = await graphql(fx.gateway.url, '{ movie(id: "m2") { entitlement { canPlay reason } } me { subscription { planId } } }', { token: carolToken });
    expect(after.data).toEqual({ movie: { entitlement: { canPlay: true, reason: 'subscription' } }, me: { subscription: { planId: 'basic' } } });
    const unknown = await graphql(fx.gateway.url, 'mutation { subscribe(planId: "gold") { planId } }', { token: carolToken });
    expect(onlyError(unknown).code).toBe('NOT_FOUND');
  });
});

describe('admin fields', () => {
  const adminQueries = [
    ['adminUsers', '{ adminUsers { id } }', 'users'],
    ['adminCreateMovie', 'mutation { adminCreateMovie(input: { title: "X", genres: [], free: true }) { id } }', 'ondemand'],
    ['adminUpdateMovie', 'mutation { adminUpdateMovie(id: "m1", input: { title: "X", genres: [], free: true }) { id } }', 'ondemand'],
    ['adminDeleteMovie', 'mutation { adminDeleteMovie(id: "m1") }', 'ondemand'],
    ['adminSetUserRoles', 'mutation { adminSetUserRoles(id: "2", roles: ["admin"]) { id } }', 'users'],
  ] as const;

  it.each(adminQueries)('%s is UNAUTHENTICATED without a token and FORBIDDEN for a user, with no upstream call', async (_, query, service) => {
    expect(onlyError(await graphql(fx.gateway.url, query)).code).toBe('UNAUTHENTICATED');
    expect(onlyError(await graphql(fx.gateway.url, query, { token: tokens.alice })).code).toBe('FORBIDDEN');
    expect(fx.counting.count(service)).toBe(0);
  });

  it('lets the admin list users with their subscriptions and set roles', async () => {
    const users = await graphql(fx.gateway.url, '{ adminUsers(limit: 3) { id username roles subscription { planId } } }', { token: tokens.admin });
    expect(users.data?.adminUsers).toEqual([
      { id: '1', username: 'alice', roles: ['user'], subscription: { planId: 'premium' } },
      { id: '2', username: 'bob', roles: ['user'], subscription: null },
      { id: '3', username: 'admin', roles: ['user', 'admin'], subscription: { planId: 'premium' } },
    ]);
    const roles = await graphql(fx.gateway.url, 'mutation { adminSetUserRoles(id: "2", roles: ["user", "editor"]) { id roles } }', { token: tokens.admin });
    expect(roles.data?.adminSetUserRoles).toEqual({ id: '2', roles: ['user', 'editor'] });
    await graphql(fx.gateway.url, 'mutation { adminSetUserRoles(id: "2", roles: ["user"]) { id } }', { token: tokens.admin });
  });

  it('lets the admin create, update and delete a movie', async () => {
    const input = { title: 'GraphQL Nights', year: 2026, genres: ['documentary'], durationMinutes: 95, free: false };
    const created = await graphql(fx.gateway.url, `mutation ($input: MovieInput!) { adminCreateMovie(input: $input) { ${MOVIE} } }`, { token: tokens.admin, variables: { input } });
    const movie = created.data?.adminCreateMovie as { id: string };
    expect(movie).toEqual({ id: expect.any(String), ...input });
    const updated = await graphql(fx.gateway.url, 'mutation ($id: ID!, $input: MovieInput!) { adminUpdateMovie(id: $id, input: $input) { id title free } }', {
      token: tokens.admin,
      variables: { id: movie.id, input: { title: 'GraphQL Days', genres: [], free: true } },
    });
    expect(updated.data?.adminUpdateMovie).toEqual({ id: movie.id, title: 'GraphQL Days', free: true });
    const deleted = await graphql(fx.gateway.url, 'mutation ($id: ID!) { adminDeleteMovie(id: $id) }', { token: tokens.admin, variables: { id: movie.id } });
    expect(deleted.data).toEqual({ adminDeleteMovie: true });
    const again = await graphql(fx.gateway.url, 'mutation ($id: ID!) { adminDeleteMovie(id: $id) }', { token: tokens.admin, variables: { id: movie.id } });
    expect(onlyError(again)).toMatchObject({ code: 'NOT_FOUND', message: 'Movie not found' });
  });
});

describe('batching: upstream calls do not grow with the list', () => {
  it.each([5, 50])('movies(limit: %i) with entitlements: one on-demand call and one rights call', async (limit) => {
    const answer = await graphql(fx.gateway.url, `{ movies(limit: ${limit}) { items { id entitlement { canPlay } } } }`, { token: tokens.alice });
    expect((answer.data?.movies as { items: unknown[] }).items).toHaveLength(limit);
    expect(fx.counting.count('ondemand')).toBe(1);
    expect(fx.counting.count('rights')).toBe(1);
    expect(fx.counting.count()).toBe(2);
  });

  it('channels with nowPlaying and entitlement: one call each to live TV (two operations) and rights', async () => {
    await graphql(fx.gateway.url, '{ channels { id nowPlaying { title } entitlement { canPlay } } }', { token: tokens.bob });
    expect(fx.counting.calls.map((call) => `${call.upstream} ${call.url.split('?')[0] ?? ''}`).sort()).toEqual([
      'livetv /livetv/channels',
      'livetv /livetv/now-playing',
      'rights /subscriptions/entitlements',
    ]);
  });

  it('search hits resolve their movies and channels with one call per service', async () => {
    await graphql(fx.gateway.url, '{ search(q: "e", limit: 50) { items { movie { id entitlement { canPlay } } channel { id } } } }', { token: tokens.alice });
    expect(fx.counting.calls.map((call) => call.upstream).sort()).toEqual(['livetv', 'ondemand', 'rights', 'search']);
  });

  it('users with subscriptions: one user management call and one rights call', async () => {
    await graphql(fx.gateway.url, '{ adminUsers(limit: 100) { id subscription { planId } } }', { token: tokens.admin });
    expect(fx.counting.calls.map((call) => call.upstream).sort()).toEqual(['rights', 'users']);
  });
});

describe('errors', () => {
  it('maps an upstream validation failure to BAD_USER_INPUT with the issues', async () => {
    const answer = await graphql(fx.gateway.url, '{ movies(limit: 101) { total } }');
    expect(onlyError(answer)).toEqual({ code: 'BAD_USER_INPUT', message: 'Request validation failed', path: ['movies'] });
    expect(answer.errors?.[0]?.extensions.errors).toEqual([{ loc: ['query', 'limit'], msg: 'must be <= 100', type: 'maximum' }]);
  });

  it.each([
    ['{ movies(limit: 0) { total } }', 'limit: Value is not a positive number: 0', 'ondemand'],
    ['{ search(q: "") { total } }', 'q: must be at least 1 character long', 'search'],
    ['{ movies(offset: -1) { total } }', 'offset: Value is not a non-negative number: -1', 'ondemand'],
    ['mutation { register(username: "someone", password: "short", email: "a@b.example") { id } }', 'password: must be at least 8 characters long', 'auth'],
    ['{ movie(id: "") { id } }', 'id: must be at least 1 character long', 'ondemand'],
    ['mutation { register(username: "someone", password: "long-enough", email: "not-an-address") { id } }', 'email: Value is not a valid email address: not-an-address', 'auth'],
  ] as const)('refuses %s as BAD_USER_INPUT naming the argument and why, no generated name, before any upstream call', async (query, reason, service) => {
    const argument = reason.slice(0, reason.indexOf(': '));
    const error = onlyError(await graphql(fx.gateway.url, query));
    expect(error).toMatchObject({ code: 'BAD_USER_INPUT', message: `Invalid value for argument "${argument}": ${reason.slice(argument.length + 2)}` });
    expect(error.message).not.toMatch(/_|input/);
    expect(fx.counting.count(service)).toBe(0);
  });

  it('maps a wrong password to UNAUTHENTICATED with the service’s message', async () => {
    const answer = await graphql(fx.gateway.url, 'mutation { login(username: "alice", password: "nope") { access_token } }');
    expect(onlyError(answer)).toMatchObject({ code: 'UNAUTHENTICATED', message: 'Incorrect username or password' });
  });

  it('fails the whole request with 401 for an invalid token, never treating it as anonymous', async () => {
    const answer = await graphql(fx.gateway.url, '{ plans { id } }', { token: 'not.a.token' });
    expect(answer.status).toBe(401);
    expect(answer.data).toBeUndefined();
    expect(answer.errors?.[0]?.extensions).toEqual({ code: 'UNAUTHENTICATED', requestId: expect.stringMatching(/^[0-9a-f-]{36}$/) });
    expect(answer.errors?.[0]?.message).toBe('Token is malformed');
    expect(fx.counting.count()).toBe(0);
  });

  it('refuses a query with more than 15 aliases before execution, with no upstream call', async () => {
    const aliases = Array.from({ length: 16 }, (_, i) => `a${i}: plans { id }`).join(' ');
    const answer = await graphql(fx.gateway.url, `{ ${aliases} }`);
    expect([answer.status, onlyError(answer)]).toEqual([400, { code: 'GRAPHQL_VALIDATION_FAILED', message: 'Syntax Error: Aliases limit of 15 exceeded, found 16.' }]);
    expect(answer.data).toBeUndefined();
    expect(fx.counting.count()).toBe(0);
  });

  it('refuses an oversized query (too many tokens) before execution, with no upstream call', async () => {
    const fields = Array.from({ length: 600 }, () => 'id name').join(' ');
    const answer = await graphql(fx.gateway.url, `{ plans { ${fields} } }`);
    expect([answer.status, onlyError(answer)]).toEqual([400, { code: 'GRAPHQL_PARSE_FAILED', message: 'Syntax Error: Document contains more that 1000 tokens. Parsing aborted.' }]);
    expect(answer.data).toBeUndefined();
    expect(fx.counting.count()).toBe(0);
  });
});

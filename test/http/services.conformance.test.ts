import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createLocalJWKSet, decodeJwt, decodeProtectedHeader, jwtVerify } from 'jose';
import { UPSTREAM_NAMES, UPSTREAMS, type UpstreamName } from '../../shared/upstreams.js';
import { DEVELOPMENT_JWT_SECRET } from '../../shared/development.js';
import { IN_MEMORY, serviceEnvironment } from '../../services/lib/environment.js';
import { startReferenceServices, startService, type ReferenceServices } from '../../services/registry.js';
import { useFixture } from '../helpers/fixture.js';
import { SpecCheckedClient } from '../helpers/openapi.js';

const ALICE = { 'x-user-id': '1', 'x-user-roles': 'user' };
const BOB = { 'x-user-id': '2', 'x-user-roles': 'user' };
const ADMIN = { 'x-user-id': '3', 'x-user-roles': 'user,admin' };

/** Every operation some test of this file called, by service. */
const covered = Object.fromEntries(UPSTREAM_NAMES.map((name) => [name, new Set<string>()])) as Record<UpstreamName, Set<string>>;

interface Services {
  readonly stack: ReferenceServices;
  readonly client: Record<UpstreamName, SpecCheckedClient>;
}

/** Six reference services of the describe's own (fresh state), each with a client that checks answers against its spec. */
function useServices(): Services {
  return useFixture(
    async () => {
      const stack = await startReferenceServices({ anyPorts: true, env: { LOG_LEVEL: 'silent', DATA_DIR: IN_MEMORY } });
      const client = {} as Record<UpstreamName, SpecCheckedClient>;
      for (const name of UPSTREAM_NAMES) client[name] = await SpecCheckedClient.create(name, stack.urls[name], covered[name]);
      return { stack, client };
    },
    ({ stack }) => stack.close(),
  );
}

// The file as a whole calls every operation of every spec (checked once all its tests ran, in whatever order).
afterAll(async () => {
  for (const name of UPSTREAM_NAMES) {
    expect((await SpecCheckedClient.operationIdsOf(name)).filter((id) => !covered[name].has(id)), `${name}: operations never called`).toEqual([]);
  }
});

type Json = Record<string, unknown> & { items?: Record<string, unknown>[] };

/** `path` is refused to a caller who is not an admin (401, 403); an admin deletes it (204); then it is gone (404). */
async function expectOnlyAnAdminDeletes(client: SpecCheckedClient, path: string): Promise<void> {
  await expectAdminOnly(client, 'DELETE', path);
  expect(await client.call('DELETE', path, { headers: ADMIN }), `DELETE ${path}`).toMatchObject({ status: 204 });
  expect(await client.call('DELETE', path, { headers: ADMIN }), `DELETE ${path} again`).toMatchObject({ status: 404 });
}

/** `method path` (with `json`) is an admin's alone: 401 with no caller, 403 for a user. */
async function expectAdminOnly(client: SpecCheckedClient, method: string, path: string, json?: unknown): Promise<void> {
  const body = json === undefined ? {} : { json };
  expect(await client.call(method, path, body), `${method} ${path} with no caller`).toMatchObject({ status: 401 });
  expect(await client.call(method, path, { ...body, headers: BOB }), `${method} ${path} as a user`).toMatchObject({ status: 403 });
}

describe('every service', () => {
  const fx = useServices();

  it.each(UPSTREAM_NAMES)('%s answers GET /health', async (name) => {
    const answer = await fx.client[name].call('GET', '/health');
    expect(answer).toMatchObject({ status: 200, body: { status: 'ok', service: name } });
  });

  it.each(UPSTREAM_NAMES)('%s answers an unknown path with 404 and a wrong method with 405, FastAPI-style', async (name) => {
    const unknown = await fetch(`${fx.stack.urls[name]}/no/such/path`);
    expect(unknown.status).toBe(404);
    expect(await unknown.json()).toEqual({ detail: 'Not Found' });
    const wrongMethod = await fetch(`${fx.stack.urls[name]}/health`, { method: 'DELETE' });
    expect(wrongMethod.status).toBe(405);
  });
});

describe('authentication', () => {
  const fx = useServices();

  it('logs the demo users in with HS256 tokens carrying sub, roles, iat and exp', async () => {
    for (const [username, sub, roles] of [
      ['alice', '1', ['user']],
      ['bob', '2', ['user']],
      ['admin', '3', ['user', 'admin']],
    ] as const) {
      const answer = await fx.client.auth.call('POST', '/auth/login', { json: { username, password: `${username}-password` } });
      expect(answer.status).toBe(200);
      const token = answer.body as { access_token: string; token_type: string; expires_in: number };
      expect(token.token_type).toBe('bearer');
      const { payload, protectedHeader } = await jwtVerify(token.access_token, new TextEncoder().encode(DEVELOPMENT_JWT_SECRET));
      expect(protectedHeader.alg).toBe('HS256');
      expect(payload).toMatchObject({ sub, roles });
      expect((payload.exp ?? 0) - (payload.iat ?? 0)).toBe(token.expires_in);
    }
  });

  it('refuses wrong credentials with 401 and the same message for unknown users', async () => {
    const wrong = await fx.client.auth.call('POST', '/auth/login', { json: { username: 'alice', password: 'nope' } });
    const unknown = await fx.client.auth.call('POST', '/auth/login', { json: { username: 'mallory', password: 'nope' } });
    expect(wrong).toMatchObject({ status: 401, body: { detail: 'Incorrect username or password' } });
    expect(unknown.body).toEqual(wrong.body);
  });

  it('answers bad input with 422 and a {loc, msg, type} list', async () => {
    const missing = await fx.client.auth.call('POST', '/auth/login', { json: { username: 'alice' } });
    expect(missing.status).toBe(422);
    expect(missing.body).toEqual({ detail: [{ loc: ['body', 'password'], msg: 'Field required', type: 'missing' }] });
    const malformed = await fx.client.auth.call('POST', '/auth/login', { rawBody: '{"username":', headers: { 'content-type': 'application/json' } });
    expect(malformed).toMatchObject({ status: 422, body: { detail: [{ loc: ['body'], type: 'json_invalid' }] } });
    const empty = await fx.client.auth.call('POST', '/auth/login');
    expect(empty).toMatchObject({ status: 422, body: { detail: [{ loc: ['body'], type: 'missing' }] } });
  });

  it('registers a user, creates the profile in user management, never returns the password', async () => {
    const answer = await fx.client.auth.call('POST', '/auth/register', { json: { username: 'carol', password: 'carol-password', email: 'carol@example.com' } });
    expect(answer.status).toBe(201);
    const user = answer.body as { id: string };
    expect(answer.body).toEqual({ id: user.id, username: 'carol', email: 'carol@example.com', roles: ['user'] });
    expect(JSON.stringify(answer.body)).not.toContain('carol-password');

    const profile = await fx.client.users.call('GET', '/users/me', { headers: { 'x-user-id': user.id, 'x-user-roles': 'user' } });
    expect(profile).toMatchObject({ status: 200, body: { username: 'carol' } });
    const login = await fx.client.auth.call('POST', '/auth/login', { json: { username: 'carol', password: 'carol-password' } });
    expect(decodeJwt((login.body as { access_token: string }).access_token).sub).toBe(user.id);

    const again = await fx.client.auth.call('POST', '/auth/register', { json: { username: 'carol', password: 'other-password', email: 'c2@example.com' } });
    expect(again).toMatchObject({ status: 409 });
    const invalid = await fx.client.auth.call('POST', '/auth/register', { json: { username: 'x', password: 'short', email: 'not-an-email' } });
    expect(invalid.status).toBe(422);
    const locs = (invalid.body as { detail: { loc: string[] }[] }).detail.map((issue) => issue.loc.join('.'));
    expect(locs).toEqual(expect.arrayContaining(['body.username', 'body.password', 'body.email']));
  });

  it('rotates refresh tokens: each works once, and one used twice revokes its whole family', async () => {
    const refresh = (token: string) => fx.client.auth.call('POST', '/auth/refresh', { json: { refresh_token: token } });
    const login = await fx.client.auth.call('POST', '/auth/login', { json: { username: 'bob', password: 'bob-password' } });
    const { refresh_token: first } = login.body as { refresh_token: string };
    const refreshed = await refresh(first);
    expect(refreshed.status).toBe(200);
    expect(decodeJwt((refreshed.body as { access_token: string }).access_token).sub).toBe('2');
    const { refresh_token: second } = refreshed.body as { refresh_token: string };
    // A thief replays the first token: refused, and the legitimate holder's newer token dies with it.
    expect(await refresh(first)).toMatchObject({ status: 401, body: { detail: 'Refresh token already used: the session is revoked' } });
    expect(await refresh(second)).toMatchObject({ status: 401, body: { detail: 'Invalid refresh token' } });
    // Another login is another family, untouched.
    const other = (await fx.client.auth.call('POST', '/auth/login', { json: { username: 'bob', password: 'bob-password' } })).body as { refresh_token: string };
    expect((await refresh(other.refresh_token)).status).toBe(200);
    expect(await refresh('never-issued')).toMatchObject({ status: 401, body: { detail: 'Invalid refresh token' } });
    const bad = await fx.client.auth.call('POST', '/auth/refresh', { json: {} });
    expect(bad.status).toBe(422);
  });

  it('publishes an empty key set while tokens are HMAC-signed, and has no key to rotate', async () => {
    expect(await fx.client.auth.call('GET', '/.well-known/jwks.json')).toMatchObject({ status: 200, body: { keys: [] } });
    expect(await fx.client.auth.call('POST', '/internal/keys/rotate')).toMatchObject({ status: 409 });
  });

  it('in ES256 mode signs with a published key, publishes the next one ahead, and rotates to it', async () => {
    const env = serviceEnvironment({ AUTH_TOKEN_ALGORITHM: 'ES256', DATA_DIR: IN_MEMORY });
    env.urls.users = fx.stack.urls.users;
    const es256 = await startService('auth', env, '127.0.0.1', 0);
    try {
      const auth = await SpecCheckedClient.create('auth', es256.url);
      const login = async () => (await auth.call('POST', '/auth/login', { json: { username: 'alice', password: 'alice-password' } })).body as { access_token: string };
      const first = await login();
      const keySet = (await auth.call('GET', '/.well-known/jwks.json')).body as { keys: { kid: string }[] };
      // The next key first, then the signing key.
      expect(keySet.keys).toHaveLength(2);
      const verified = await jwtVerify(first.access_token, createLocalJWKSet(keySet as never));
      expect(verified.protectedHeader).toMatchObject({ alg: 'ES256', kid: keySet.keys[1]?.kid });
      const rotated = await auth.call('POST', '/internal/keys/rotate');
      const keys = (rotated.body as { keys: { kid: string }[] }).keys;
      expect(keys.map((key) => key.kid).slice(1)).toEqual(keySet.keys.map((key) => key.kid));
      const after = (await login()).access_token;
      // Signed with the key that was published ahead: a verifier holding the old key set knows it.
      expect(decodeProtectedHeader(after).kid).toBe(keySet.keys[0]?.kid);
      expect((await jwtVerify(after, createLocalJWKSet(keySet as never))).payload.sub).toBe('1');
    } finally {
      await es256.close();
    }
  });
});

describe('user management', () => {
  const fx = useServices();

  it('answers the caller profile and lets the caller change the email', async () => {
    expect(await fx.client.users.call('GET', '/users/me', { headers: ALICE })).toMatchObject({ status: 200, body: { id: '1', username: 'alice' } });
    expect(await fx.client.users.call('GET', '/users/me')).toMatchObject({ status: 401 });
    expect(await fx.client.users.call('GET', '/users/me', { headers: { 'x-user-id': '999' } })).toMatchObject({ status: 404 });
    const patched = await fx.client.users.call('PATCH', '/users/me', { headers: BOB, json: { email: 'bob@tv.example' } });
    expect(patched).toMatchObject({ status: 200, body: { email: 'bob@tv.example' } });
    expect(await fx.client.users.call('PATCH', '/users/me', { headers: BOB, json: { email: 'nope' } })).toMatchObject({ status: 422 });
    expect(await fx.client.users.call('PATCH', '/users/me', { headers: BOB, json: { roles: ['admin'] } })).toMatchObject({ status: 422 });
    expect(await fx.client.users.call('PATCH', '/users/me', { json: { email: 'x@example.com' } })).toMatchObject({ status: 401 });
    expect(await fx.client.users.call('PATCH', '/users/me', { headers: { 'x-user-id': '999' }, json: { email: 'x@example.com' } })).toMatchObject({ status: 404 });
  });

  it('answers many users in one call: own profile for users, any for admins', async () => {
    const own = await fx.client.users.call('GET', '/users/batch?ids=1', { headers: ALICE });
    expect((own.body as Json).items?.map((user) => user.id)).toEqual(['1']);
    expect(await fx.client.users.call('GET', '/users/batch?ids=1,2', { headers: ALICE })).toMatchObject({ status: 403 });
    const many = await fx.client.users.call('GET', '/users/batch?ids=3,1,404,2', { headers: ADMIN });
    expect((many.body as Json).items?.map((user) => user.id)).toEqual(['3', '1', '2']);
    expect(await fx.client.users.call('GET', '/users/batch', { headers: ADMIN })).toMatchObject({ status: 422 });
    expect(await fx.client.users.call('GET', '/users/batch?ids=1')).toMatchObject({ status: 401 });
  });

  it('lets only admins list users and set roles (defence in depth)', async () => {
    expect(await fx.client.users.call('GET', '/admin/users')).toMatchObject({ status: 401 });
    expect(await fx.client.users.call('GET', '/admin/users', { headers: ALICE })).toMatchObject({ status: 403, body: { detail: 'Admin access required' } });
    const page = await fx.client.users.call('GET', '/admin/users?limit=2&offset=1', { headers: ADMIN });
    expect((page.body as Json[]).map((user) => user.username)).toEqual(['bob', 'admin']);
    expect(await fx.client.users.call('GET', '/admin/users?limit=0', { headers: ADMIN })).toMatchObject({ status: 422 });

    const roles = await fx.client.users.call('PUT', '/admin/users/2/roles', { headers: ADMIN, json: { roles: ['user', 'editor'] } });
    expect(roles).toMatchObject({ status: 200, body: { id: '2', roles: ['user', 'editor'] } });
    await fx.client.users.call('PUT', '/admin/users/2/roles', { headers: ADMIN, json: { roles: ['user'] } });
    await expectAdminOnly(fx.client.users, 'PUT', '/admin/users/2/roles', { roles: ['admin'] });
    expect(await fx.client.users.call('PUT', '/admin/users/999/roles', { headers: ADMIN, json: { roles: [] } })).toMatchObject({ status: 404 });
    expect(await fx.client.users.call('PUT', '/admin/users/2/roles', { headers: ADMIN, json: { roles: 'admin' } })).toMatchObject({ status: 422 });
  });

  it('serves the internal profile operations used by authentication (and its undoing of a registration)', async () => {
    expect(await fx.client.users.call('GET', '/internal/users/3')).toMatchObject({ status: 200, body: { roles: ['user', 'admin'] } });
    expect(await fx.client.users.call('GET', '/internal/users/999')).toMatchObject({ status: 404 });
    expect(await fx.client.users.call('POST', '/internal/users', { json: { id: '1', username: 'dup', email: 'd@example.com' } })).toMatchObject({ status: 409 });
    expect(await fx.client.users.call('POST', '/internal/users', { json: { id: '77' } })).toMatchObject({ status: 422 });
    expect(await fx.client.users.call('POST', '/internal/users', { json: { id: '77', username: 'dave', email: 'dave@example.com' } })).toMatchObject({ status: 201 });
    // Undoing a registration: the profile goes, and removing it again (or one never made) is no error.
    expect(await fx.client.users.call('DELETE', '/internal/users/77')).toMatchObject({ status: 204 });
    expect(await fx.client.users.call('GET', '/internal/users/77')).toMatchObject({ status: 404 });
    expect(await fx.client.users.call('DELETE', '/internal/users/77')).toMatchObject({ status: 204 });
  });
});

describe('on-demand', () => {
  const fx = useServices();

  it('holds at least 50 movies, at least 10 of them free, paged and filtered by genre', async () => {
    const all = await fx.client.ondemand.call('GET', '/ondemand/movies?limit=100');
    const { items = [], total } = all.body as Json;
    expect(total).toBeGreaterThanOrEqual(50);
    expect(items.filter((movie) => movie.free).length).toBeGreaterThanOrEqual(10);
    const page = await fx.client.ondemand.call('GET', '/ondemand/movies?limit=5&offset=10');
    expect((page.body as Json).items?.map((movie) => movie.id)).toEqual(items.slice(10, 15).map((movie) => movie.id));
    const drama = await fx.client.ondemand.call('GET', '/ondemand/movies?genre=drama&limit=100');
    expect((drama.body as Json).items?.every((movie) => (movie.genres as string[]).includes('drama'))).toBe(true);
    expect((drama.body as Json).total).toBeGreaterThan(0);
    expect(await fx.client.ondemand.call('GET', '/ondemand/movies?limit=101')).toMatchObject({ status: 422 });
    expect(await fx.client.ondemand.call('GET', '/ondemand/movies?offset=-1')).toMatchObject({ status: 422 });
  });

  it('answers one movie, many by id in one call, and 404 for unknown ids', async () => {
    expect(await fx.client.ondemand.call('GET', '/ondemand/movies/m2')).toMatchObject({ status: 200, body: { id: 'm2', free: false } });
    expect(await fx.client.ondemand.call('GET', '/ondemand/movies/nope')).toMatchObject({ status: 404, body: { detail: 'Movie not found' } });
    const batch = await fx.client.ondemand.call('GET', '/ondemand/movies/batch?ids=m3%2Cm1,nope,m2');
    expect((batch.body as Json).items?.map((movie) => movie.id)).toEqual(['m3', 'm1', 'm2']);
  });

  it('plays a paid movie for alice, refuses it to bob, plays a free one for bob', async () => {
    const alice = await fx.client.ondemand.call('GET', '/play/ondemand/m2', { headers: ALICE });
    expect(alice.status).toBe(200);
    const { url, expiresAt } = alice.body as { url: string; expiresAt: string };
    expect(new URL(url).searchParams.get('sig')).toBeTruthy();
    expect(Date.parse(expiresAt)).toBeGreaterThan(Date.now());
    expect(await fx.client.ondemand.call('GET', '/play/ondemand/m2', { headers: BOB })).toMatchObject({ status: 403 });
    expect(await fx.client.ondemand.call('GET', '/play/ondemand/m1', { headers: BOB })).toMatchObject({ status: 200 });
    expect(await fx.client.ondemand.call('GET', '/play/ondemand/m1')).toMatchObject({ status: 401 });
    expect(await fx.client.ondemand.call('GET', '/play/ondemand/nope', { headers: ALICE })).toMatchObject({ status: 404 });
  });

  it('lets only admins create, update and delete movies', async () => {
    const input = { title: 'Gateway: The Movie', year: 2026, genres: ['documentary'], durationMinutes: 90, free: false };
    await expectAdminOnly(fx.client.ondemand, 'POST', '/admin/ondemand/movies', input);
    expect(await fx.client.ondemand.call('POST', '/admin/ondemand/movies', { headers: ADMIN, json: { title: '' } })).toMatchObject({ status: 422 });
    const created = await fx.client.ondemand.call('POST', '/admin/ondemand/movies', { headers: ADMIN, json: input });
    expect(created).toMatchObject({ status: 201, body: input });
    const id = (created.body as { id: string }).id;
    const updated = await fx.client.ondemand.call('PUT', `/admin/ondemand/movies/${id}`, { headers: ADMIN, json: { ...input, free: true } });
    expect(updated).toMatchObject({ status: 200, body: { id, free: true } });
    await expectAdminOnly(fx.client.ondemand, 'PUT', `/admin/ondemand/movies/${id}`, input);
    expect(await fx.client.ondemand.call('PUT', '/admin/ondemand/movies/nope', { headers: ADMIN, json: input })).toMatchObject({ status: 404 });
    expect(await fx.client.ondemand.call('PUT', `/admin/ondemand/movies/${id}`, { headers: ADMIN, json: { ...input, year: 'soon' } })).toMatchObject({ status: 422 });
    await expectOnlyAnAdminDeletes(fx.client.ondemand, `/admin/ondemand/movies/${id}`);
  });
});

describe('live TV', () => {
  const fx = useServices();

  it('holds at least 20 channels, each with a back-to-back schedule covering the next 24 hours', async () => {
    const channels = (await fx.client.livetv.call('GET', '/livetv/channels')).body as Json[];
    expect(channels.length).toBeGreaterThanOrEqual(20);
    const now = Date.now();
    for (const channel of channels) {
      const schedule = (await fx.client.livetv.call('GET', `/livetv/channels/${String(channel.id)}/schedule`)).body as { start: string; end: string }[];
      expect(Date.parse(schedule[0]?.start ?? '')).toBeLessThanOrEqual(now);
      expect(Date.parse(schedule.at(-1)?.end ?? '')).toBeGreaterThanOrEqual(now + 24 * 3600 * 1000);
      schedule.slice(1).forEach((program, i) => expect(program.start).toBe(schedule[i]?.end));
    }
    expect(await fx.client.livetv.call('GET', '/livetv/channels/nope/schedule')).toMatchObject({ status: 404 });
  });

  it('answers one channel, many by id, and now-playing for many channels in one call', async () => {
    expect(await fx.client.livetv.call('GET', '/livetv/channels/c2')).toMatchObject({ status: 200, body: { id: 'c2', number: 102 } });
    expect(await fx.client.livetv.call('GET', '/livetv/channels/nope')).toMatchObject({ status: 404 });
    const batch = await fx.client.livetv.call('GET', '/livetv/channels/batch?ids=c3,c1,nope');
    expect((batch.body as Json).items?.map((channel) => channel.id)).toEqual(['c3', 'c1']);
    expect(await fx.client.livetv.call('GET', '/livetv/channels/batch')).toMatchObject({ status: 422 });
    const now = await fx.client.livetv.call('GET', '/livetv/now-playing?channelIds=c1,c2,nope');
    const items = (now.body as Json).items ?? [];
    expect(items.map((item) => item.channelId)).toEqual(['c1', 'c2']);
    for (const item of items) {
      const program = item.program as { start: string; end: string };
      expect(Date.parse(program.start)).toBeLessThanOrEqual(Date.now());
      expect(Date.parse(program.end)).toBeGreaterThan(Date.now());
    }
    expect(await fx.client.livetv.call('GET', '/livetv/now-playing')).toMatchObject({ status: 422 });
  });

  it('answers the schedules of many channels in one call, each the same as the channel’s own', async () => {
    const batch = await fx.client.livetv.call('GET', '/livetv/schedules?channelIds=c2,nope,c1');
    const items = ((batch.body as Json).items ?? []) as { channelId: string; programs: { start: string; end: string }[] }[];
    expect(items.map((item) => item.channelId)).toEqual(['c2', 'c1']);
    const own = await fx.client.livetv.call('GET', '/livetv/channels/c2/schedule');
    expect(items[0]?.programs[0]).toEqual((own.body as { start: string }[])[0]);
    expect(Date.parse(items[0]?.programs.at(-1)?.end ?? '')).toBeGreaterThanOrEqual(Date.now() + 24 * 3600_000);
    expect(await fx.client.livetv.call('GET', '/livetv/schedules')).toMatchObject({ status: 422 });
  });

  it('plays a paid channel for alice, refuses it to bob, plays a free one for bob', async () => {
    expect(await fx.client.livetv.call('GET', '/play/live/c2', { headers: ALICE })).toMatchObject({ status: 200 });
    expect(await fx.client.livetv.call('GET', '/play/live/c2', { headers: BOB })).toMatchObject({ status: 403 });
    expect(await fx.client.livetv.call('GET', '/play/live/c1', { headers: BOB })).toMatchObject({ status: 200 });
    expect(await fx.client.livetv.call('GET', '/play/live/c1')).toMatchObject({ status: 401 });
    expect(await fx.client.livetv.call('GET', '/play/live/nope', { headers: ALICE })).toMatchObject({ status: 404 });
  });

  it('lets only admins create, update and delete channels; numbers stay unique', async () => {
    const input = { name: 'Gateway TV', number: 901, free: true };
    await expectAdminOnly(fx.client.livetv, 'POST', '/admin/livetv/channels', input);
    expect(await fx.client.livetv.call('POST', '/admin/livetv/channels', { headers: ADMIN, json: { ...input, number: 101 } })).toMatchObject({ status: 409 });
    expect(await fx.client.livetv.call('POST', '/admin/livetv/channels', { headers: ADMIN, json: { name: 'x' } })).toMatchObject({ status: 422 });
    const created = await fx.client.livetv.call('POST', '/admin/livetv/channels', { headers: ADMIN, json: input });
    expect(created).toMatchObject({ status: 201, body: input });
    const id = (created.body as { id: string }).id;
    expect(await fx.client.livetv.call('PUT', `/admin/livetv/channels/${id}`, { headers: ADMIN, json: { ...input, name: 'Gateway TV 2' } })).toMatchObject({ status: 200 });
    expect(await fx.client.livetv.call('PUT', `/admin/livetv/channels/${id}`, { headers: ADMIN, json: { ...input, number: 102 } })).toMatchObject({ status: 409 });
    expect(await fx.client.livetv.call('PUT', `/admin/livetv/channels/${id}`, { headers: ADMIN, json: { ...input, number: 0 } })).toMatchObject({ status: 422 });
    expect(await fx.client.livetv.call('PUT', '/admin/livetv/channels/nope', { headers: ADMIN, json: input })).toMatchObject({ status: 404 });
    await expectAdminOnly(fx.client.livetv, 'PUT', `/admin/livetv/channels/${id}`, input);
    await expectOnlyAnAdminDeletes(fx.client.livetv, `/admin/livetv/channels/${id}`);
  });
});

describe('rights management', () => {
  const fx = useServices();

  it('offers the basic and premium plans', async () => {
    const plans = (await fx.client.rights.call('GET', '/subscriptions/plans')).body as Json[];
    expect(plans.map((plan) => plan.id)).toEqual(['basic', 'premium']);
  });

  it('knows who subscribes to what', async () => {
    expect(await fx.client.rights.call('GET', '/subscriptions/me', { headers: ALICE })).toMatchObject({ status: 200, body: { planId: 'premium', status: 'active' } });
    expect(await fx.client.rights.call('GET', '/subscriptions/me', { headers: BOB })).toMatchObject({ status: 404 });
    expect(await fx.client.rights.call('GET', '/subscriptions/me')).toMatchObject({ status: 401 });
    const batch = await fx.client.rights.call('GET', '/subscriptions/batch?userIds=1,2,3', { headers: ADMIN });
    expect((batch.body as Json).items?.map((record) => record.userId)).toEqual(['1', '3']);
    expect(await fx.client.rights.call('GET', '/subscriptions/batch?userIds=2', { headers: BOB })).toMatchObject({ status: 200, body: { items: [] } });
    expect(await fx.client.rights.call('GET', '/subscriptions/batch?userIds=1', { headers: BOB })).toMatchObject({ status: 403 });
    expect(await fx.client.rights.call('GET', '/subscriptions/batch?userIds=1')).toMatchObject({ status: 401 });
    expect(await fx.client.rights.call('GET', '/subscriptions/batch', { headers: ADMIN })).toMatchObject({ status: 422 });
  });

  it('decides many entitlements in one call: alice everything, bob only free content', async () => {
    const ids = 'movie:m1,movie:m2,channel:c1,channel:c2,movie:nope';
    const decisions = async (headers: Record<string, string>) =>
      ((await fx.client.rights.call('GET', `/subscriptions/entitlements?contentIds=${ids}`, { headers })).body as Json).items?.map((item) => [item.canPlay, item.reason]);
    expect(await decisions(ALICE)).toEqual([
      [true, 'free'],
      [true, 'subscription'],
      [true, 'free'],
      [true, 'subscription'],
      [false, 'unknown_content'],
    ]);
    expect(await decisions(BOB)).toEqual([
      [true, 'free'],
      [false, 'subscription_required'],
      [true, 'free'],
      [false, 'subscription_required'],
      [false, 'unknown_content'],
    ]);
    expect(await fx.client.rights.call('GET', '/subscriptions/entitlements?contentIds=movie:m1')).toMatchObject({ status: 401 });
    expect(await fx.client.rights.call('GET', '/subscriptions/entitlements?contentIds=film:m1', { headers: BOB })).toMatchObject({ status: 422 });
  });

  it('subscribes a user, after which the plan entitles them', async () => {
    const user = { 'x-user-id': '77', 'x-user-roles': 'user' };
    expect(await fx.client.rights.call('POST', '/subscriptions', { headers: user, json: { planId: 'gold' } })).toMatchObject({ status: 404 });
    expect(await fx.client.rights.call('POST', '/subscriptions', { headers: user, json: {} })).toMatchObject({ status: 422 });
    expect(await fx.client.rights.call('POST', '/subscriptions', { json: { planId: 'basic' } })).toMatchObject({ status: 401 });
    expect(await fx.client.rights.call('POST', '/subscriptions', { headers: user, json: { planId: 'basic' } })).toMatchObject({ status: 201, body: { planId: 'basic', status: 'active' } });
    const decisions = await fx.client.rights.call('GET', '/subscriptions/entitlements?contentIds=movie:m2,channel:c2', { headers: user });
    expect((decisions.body as Json).items?.map((item) => item.canPlay)).toEqual([true, false]);
  });

  it('lets only admins grant, list and revoke entitlements, and a grant entitles', async () => {
    await expectAdminOnly(fx.client.rights, 'POST', '/admin/rights/entitlements', { userId: '2', contentId: 'movie:m2' });
    expect(await fx.client.rights.call('POST', '/admin/rights/entitlements', { headers: ADMIN, json: { userId: '2', contentId: 'm2' } })).toMatchObject({ status: 422 });
    const grant = await fx.client.rights.call('POST', '/admin/rights/entitlements', { headers: ADMIN, json: { userId: '2', contentId: 'movie:m2' } });
    expect(grant).toMatchObject({ status: 201, body: { userId: '2', contentId: 'movie:m2' } });
    expect(await fx.client.ondemand.call('GET', '/play/ondemand/m2', { headers: BOB })).toMatchObject({ status: 200 });
    const listed = await fx.client.rights.call('GET', '/admin/rights/entitlements?userId=2', { headers: ADMIN });
    expect((listed.body as Json[]).map((item) => item.contentId)).toEqual(['movie:m2']);
    await expectAdminOnly(fx.client.rights, 'GET', '/admin/rights/entitlements');
    expect(await fx.client.rights.call('GET', '/admin/rights/entitlements?userId=', { headers: ADMIN })).toMatchObject({ status: 422 });
    const id = (grant.body as { id: string }).id;
    await expectOnlyAnAdminDeletes(fx.client.rights, `/admin/rights/entitlements/${id}`);
    expect(await fx.client.ondemand.call('GET', '/play/ondemand/m2', { headers: BOB })).toMatchObject({ status: 403 });
  });
});

describe('global search', () => {
  const fx = useServices();

  it('finds movies and channels by title, best matches first, with the total', async () => {
    const answer = await fx.client.search.call('GET', '/search/global?q=news&limit=5');
    const { items = [], total } = answer.body as Json;
    expect(items[0]).toEqual({ kind: 'channel', id: 'c1', title: 'News 24' });
    expect(total).toBeGreaterThanOrEqual(items.length);
    const movies = await fx.client.search.call('GET', '/search/global?q=silent&limit=2');
    expect((movies.body as Json).items).toHaveLength(2);
    expect((movies.body as Json).total).toBe(5);
    expect(await fx.client.search.call('GET', '/search/global?q=')).toMatchObject({ status: 422 });
    expect(await fx.client.search.call('GET', '/search/global?q=a&limit=51')).toMatchObject({ status: 422 });
  });
});

describe('HEAD', () => {
  const fx = useServices();

  it('is answered wherever GET is, as GET is but with no body (the gateway forwards a HEAD as it came)', async () => {
    const search = `${fx.stack.urls.search}/search/global?q=news&limit=5`;
    const movie = `${fx.stack.urls.ondemand}/movies/m1`;
    const me = `${fx.stack.urls.users}/users/me`;
    for (const [url, headers] of [[search, {}], [movie, {}], [me, ALICE], [me, {}], [`${fx.stack.urls.search}/search/global?q=`, {}], ...UPSTREAM_NAMES.map((name) => [`${fx.stack.urls[name]}/health`, {}] as const)] as const) {
      const [get, head] = await Promise.all(['GET', 'HEAD'].map((method) => fetch(url, { method, headers, signal: AbortSignal.timeout(10_000) })));
      expect(head?.status, `HEAD ${url}`).toBe(get?.status);
      expect(head?.headers.get('content-type'), `HEAD ${url}`).toBe(get?.headers.get('content-type'));
      expect(await head?.text(), `HEAD ${url}`).toBe('');
      expect((await get?.text())?.length, `GET ${url}`).toBeGreaterThan(0);
    }
    expect((await fetch(`${fx.stack.urls.users}/users/me`, { method: 'HEAD', headers: ALICE })).status).toBe(200);
  });
});

/** What a service answers when another it needs is down: 503 naming that one, never a network error. */
const unavailable = (name: UpstreamName) => ({ status: 503, body: { detail: `The ${UPSTREAMS[name].title} service is unavailable` } });

describe('when a service another depends on is down', () => {
  const fx = useServices();

  it('answers 503 naming the missing service, not a network error', async () => {
    await fx.stack.services.rights.close();
    expect(await fx.client.ondemand.call('GET', '/play/ondemand/m1', { headers: ALICE })).toMatchObject(unavailable('rights'));
    expect(await fx.client.livetv.call('GET', '/play/live/c1', { headers: ALICE })).toMatchObject(unavailable('rights'));
    await fx.stack.services.ondemand.close();
    expect(await fx.client.search.call('GET', '/search/global?q=news')).toMatchObject(unavailable('ondemand'));
    await fx.stack.services.users.close();
    expect(await fx.client.auth.call('POST', '/auth/login', { json: { username: 'alice', password: 'alice-password' } })).toMatchObject(unavailable('users'));
    expect(await fx.client.auth.call('POST', '/auth/register', { json: { username: 'erin', password: 'erin-password', email: 'erin@example.com' } })).toMatchObject(unavailable('users'));
  });
});

describe('when the catalogue is down', () => {
  const fx = useServices();

  it('the rights service answers 503 naming it', async () => {
    await fx.stack.services.ondemand.close();
    expect(await fx.client.rights.call('GET', '/subscriptions/entitlements?contentIds=movie:m1', { headers: ALICE })).toMatchObject(unavailable('ondemand'));
  });
});

describe('the services’ secrets', () => {
  it('are read from NAME_FILE as Docker and Kubernetes mount them, and refused when given twice', () => {
    const dir = mkdtempSync(join(tmpdir(), 'service-secrets-'));
    writeFileSync(join(dir, 'jwt'), 'a-service-secret-that-is-long-enough-0123456789\n');
    writeFileSync(join(dir, 'playback'), 'playback-key\n');
    const env = serviceEnvironment({ JWT_SECRET_KEY_FILE: join(dir, 'jwt'), PLAYBACK_SIGNING_KEY_FILE: join(dir, 'playback') });
    expect(env.jwtSecret).toBe('a-service-secret-that-is-long-enough-0123456789');
    expect(env.playbackSigningKey).toBe('playback-key');
    expect(() => serviceEnvironment({ JWT_SECRET_KEY: 'x', JWT_SECRET_KEY_FILE: join(dir, 'jwt') })).toThrow('JWT_SECRET_KEY and JWT_SECRET_KEY_FILE are both set: set one');
  });
});

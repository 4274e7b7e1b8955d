import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import { IN_MEMORY, serviceEnvironment } from '../../services/lib/environment.js';
import { startService, type RunningService } from '../../services/registry.js';
import { useStack } from '../helpers/stack.js';
import { login } from '../helpers/login.js';
import { startGateway, type RunningGateway } from '../helpers/gateway.js';

const fx = useStack({ upstreams: 'reference' });

async function get(path: string, token?: string, baseUrl = fx.gateway.url): Promise<{ status: number; body: Record<string, unknown> }> {
  const response = await fetch(baseUrl + path, { headers: token ? { authorization: `Bearer ${token}` } : {} });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

describe('the REST passthrough in front of the reference services', () => {
  it('logs in through the gateway, and wrong credentials are a 401 problem', async () => {
    expect(await login(fx.gateway.url, 'alice')).toMatch(/^ey/);
    const wrong = await fetch(`${fx.gateway.url}/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"username":"alice","password":"x"}' });
    expect(wrong.status).toBe(401);
    expect(wrong.headers.get('content-type')).toBe('application/problem+json');
    expect(await wrong.json()).toMatchObject({ status: 401, detail: 'Incorrect username or password' });
  });

  it('lets alice play a paid movie and refuses it to bob, who can play a free one', async () => {
    const alice = await login(fx.gateway.url, 'alice');
    const bob = await login(fx.gateway.url, 'bob');
    expect(await get('/play/ondemand/m2', alice)).toMatchObject({ status: 200, body: { url: expect.stringContaining('https://') } });
    expect(await get('/play/ondemand/m2', bob)).toMatchObject({ status: 403, body: { title: 'Forbidden', detail: 'Not entitled to play this movie' } });
    expect(await get('/play/ondemand/m1', bob)).toMatchObject({ status: 200 });
    expect(await get('/play/live/c2', bob)).toMatchObject({ status: 403 });
    expect(await get('/play/live/c2', alice)).toMatchObject({ status: 200 });
  });

  it('serves the user’s own profile, subscription, catalogue and search', async () => {
    const alice = await login(fx.gateway.url, 'alice');
    expect(await get('/users/me', alice)).toMatchObject({ status: 200, body: { id: '1', username: 'alice' } });
    expect(await get('/subscriptions/me', alice)).toMatchObject({ status: 200, body: { planId: 'premium' } });
    expect((await get('/ondemand/movies?limit=3', alice)).body).toMatchObject({ total: 50 });
    expect(await get('/livetv/channels/c1/schedule', alice)).toMatchObject({ status: 200 });
    expect((await get('/search/global?q=news')).body).toMatchObject({ items: [{ id: 'c1' }] });
  });

  it('lets only the admin use the admin routes', async () => {
    const admin = await login(fx.gateway.url, 'admin');
    const bob = await login(fx.gateway.url, 'bob');
    expect(await get('/admin/users', admin)).toMatchObject({ status: 200 });
    expect(await get('/admin/users', bob)).toMatchObject({ status: 403 });
    expect(await get('/admin/users')).toMatchObject({ status: 401 });
    const created = await fetch(`${fx.gateway.url}/admin/ondemand/movies`, {
      method: 'POST',
      headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/json' },
      body: JSON.stringify({ title: 'Through the Gateway', genres: ['documentary'], free: true }),
    });
    expect(created.status).toBe(201);
    const { id } = (await created.json()) as { id: string };
    const deleted = await fetch(`${fx.gateway.url}/admin/ondemand/movies/${id}`, { method: 'DELETE', headers: { authorization: `Bearer ${admin}` } });
    expect(deleted.status).toBe(204);
  });

  it('relays the services’ validation errors as problems with an errors list', async () => {
    const alice = await login(fx.gateway.url, 'alice');
    const response = await get('/ondemand/movies?limit=0', alice);
    expect(response).toMatchObject({
      status: 422,
      body: { title: 'Unprocessable Entity', detail: 'Request validation failed', errors: [{ loc: ['query', 'limit'], type: 'minimum' }] },
    });
  });

  it('registers through the gateway and the new user can log in and read their profile', async () => {
    const registered = await fetch(`${fx.gateway.url}/auth/register`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ username: 'frank', password: 'frank-password', email: 'frank@example.com' }),
    });
    expect(registered.status).toBe(201);
    const token = await login(fx.gateway.url, 'frank');
    expect(await get('/users/me', token)).toMatchObject({ status: 200, body: { username: 'frank', roles: ['user'] } });
  });
});

describe('JWKS verification against the reference authentication service in ES256 mode', () => {
  let auth: RunningService;
  let jwksGateway: RunningGateway;

  beforeAll(async () => {
    const env = serviceEnvironment({ AUTH_TOKEN_ALGORITHM: 'ES256', DATA_DIR: IN_MEMORY });
    env.urls.users = fx.services.urls.users;
    auth = await startService('auth', env, '127.0.0.1', 0);
    // Keys are rotated on purpose here, in any order of the tests: every unknown kid may fetch the key set.
    jwksGateway = await startGateway({ ...fx.services.urls, auth: auth.url }, { JWKS_URL: `${auth.url}/.well-known/jwks.json` }, { verifier: { refetch: { perKidMs: 0, minIntervalMs: 0 } } });
  });

  afterAll(async () => {
    await jwksGateway.close();
    await auth.close();
  });

  it('verifies ES256 tokens from the key set, through a key rotation', async () => {
    const before = await login(jwksGateway.url, 'alice');
    expect(await get('/users/me', before, jwksGateway.url)).toMatchObject({ status: 200, body: { id: '1' } });

    // Twice: past the key published ahead, to a key the gateway has never seen; it is fetched at once.
    for (let i = 0; i < 2; i++) expect((await fetch(`${auth.url}/internal/keys/rotate`, { method: 'POST' })).status).toBe(200);
    const after = await login(jwksGateway.url, 'admin');
    expect(await get('/admin/users', after, jwksGateway.url)).toMatchObject({ status: 200 });
    expect(await get('/users/me', before, jwksGateway.url)).toMatchObject({ status: 200 });
  });

  it('refuses HS256 tokens, even one signed with the HMAC secret the services know', async () => {
    const hs256 = await login(fx.gateway.url, 'admin');
    expect(await get('/admin/users', hs256, jwksGateway.url)).toMatchObject({ status: 401 });
  });

  it('refuses a token whose kid is not in the key set, and one signed by a key that claims a known kid', async () => {
    const { privateKey, publicKey } = await generateKeyPair('ES256');
    const keySet = (await (await fetch(`${auth.url}/.well-known/jwks.json`)).json()) as { keys: { kid: string }[] };
    for (const kid of ['unknown-kid', keySet.keys[0]?.kid ?? '']) {
      const forged = await new SignJWT({ roles: ['admin'] }).setProtectedHeader({ alg: 'ES256', kid }).setSubject('3').setExpirationTime('1h').sign(privateKey);
      expect(await get('/admin/users', forged, jwksGateway.url), kid).toMatchObject({ status: 401 });
    }
    const embedded = await new SignJWT({ roles: ['admin'] })
      .setProtectedHeader({ alg: 'ES256', jwk: await exportJWK(publicKey) })
      .setSubject('3')
      .setExpirationTime('1h')
      .sign(privateKey);
    expect(await get('/admin/users', embedded, jwksGateway.url)).toMatchObject({ status: 401 });
  });
});

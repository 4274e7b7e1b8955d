import { generateKeyPair, SignJWT } from 'jose';
import { beforeAll, describe, expect, it } from 'vitest';
import { rawGet } from '../helpers/raw-http.js';
import { useStack } from '../helpers/stack.js';
import { startGateway } from '../helpers/gateway.js';
import { signToken, TEST_SECRET, unsignedToken, userAndAdminTokens } from '../helpers/tokens.js';

const fx = useStack({});
let user: string;
let admin: string;
beforeAll(async () => ({ user, admin } = await userAndAdminTokens()));

const now = () => Math.floor(Date.now() / 1000);
const adminClaims = () => ({ sub: '7', roles: ['user', 'admin'], iat: now(), exp: now() + 3600 });

function parts(token: string): [string, string, string] {
  return token.split('.') as [string, string, string];
}

async function tokenAttacks(): Promise<[string, string][]> {
  const valid = admin;
  const [header, payload, signature] = parts(valid);
  const [, userPayload] = parts(user);
  const { privateKey } = await generateKeyPair('RS256');
  return [
    ...['none', 'None', 'NONE', 'nOnE'].map((alg): [string, string] => [`alg "${alg}"`, unsignedToken({ alg, typ: 'JWT' }, adminClaims())]),
    ['alg none with the original signature', `${unsignedToken({ alg: 'none' }, adminClaims())}${signature}`],
    ['stripped signature', `${header}.${payload}.`],
    ['no signature segment', `${header}.${payload}`],
    ['truncated signature', `${header}.${payload}.${signature.slice(0, 20)}`],
    ['signature of another token', `${header}.${payload.slice(0, -2)}${userPayload.slice(-2)}.${signature}`],
    ['user claims with the admin signature', `${header}.${Buffer.from(JSON.stringify(adminClaims())).toString('base64url')}.${parts(user)[2]}`],
    ['wrong key', await signToken({ sub: '7', roles: ['user', 'admin'] }, { secret: 'another-secret-that-is-long-enough-for-hs256!!' })],
    ['HS512 when only HS256 is accepted', await signToken({ sub: '7', roles: ['user', 'admin'] }, { alg: 'HS512' })],
    ['RS256 with an attacker key', await new SignJWT({ roles: ['admin'] }).setProtectedHeader({ alg: 'RS256' }).setSubject('7').setExpirationTime('1h').sign(privateKey)],
    ['expired a minute ago', await signToken({ sub: '7', roles: ['user', 'admin'], exp: now() - 60 }, { expiresIn: null })],
    ['no exp', await signToken({ sub: '7', roles: ['user', 'admin'] }, { expiresIn: null })],
    ['nbf a minute ahead', await signToken({ sub: '7', roles: ['user', 'admin'], nbf: now() + 60 })],
    ['no sub', await signToken({ sub: null as unknown as string, roles: ['user', 'admin'] })],
    ['empty sub', await signToken({ sub: '', roles: ['user', 'admin'] })],
    ['sub with a line break', await signToken({ sub: '7\r\nX-User-Roles: admin', roles: ['user'] })],
    ['one segment', 'abc'],
    ['four segments', `${valid}.extra`],
    ['empty segments', '..'],
    ['header that is not JSON', `${Buffer.from('not json').toString('base64url')}.${payload}.${signature}`],
    ['payload that is not an object', `${header}.${Buffer.from('"admin"').toString('base64url')}.${signature}`],
    ['oversized', `${header}.${Buffer.from(JSON.stringify({ ...adminClaims(), pad: 'x'.repeat(9000) })).toString('base64url')}.${signature}`],
  ];
}

describe('an attacker’s tokens', () => {
  it('are each refused with 401 invalid_token, and no upstream is called', async () => {
    for (const [name, token] of await tokenAttacks()) {
      for (const path of ['/admin/users', '/users/me']) {
        const response = await fetch(`${fx.gateway.url}${path}`, { headers: { authorization: `Bearer ${token}` } });
        expect(response.status, `${name} on ${path}`).toBe(401);
        expect(response.headers.get('www-authenticate'), name).toMatch(/^Bearer error="invalid_token"/);
        expect(((await response.json()) as { detail: string }).detail, name).toBeTruthy();
      }
    }
    expect(fx.upstreams.all()).toHaveLength(0);
  });

  it.each([
    ['Basic scheme', 'Basic YWRtaW46YWRtaW4='],
    ['Bearer without a token', 'Bearer'],
    ['two tokens', 'Bearer a.b.c d.e.f'],
    ['token without scheme', 'eyJhbGciOiJIUzI1NiJ9.e30.x'],
  ])('a malformed Authorization header (%s) is 401 and reaches no upstream', async (_, authorization) => {
    const response = await fetch(`${fx.gateway.url}/users/me`, { headers: { authorization } });
    expect(response.status).toBe(401);
    expect(fx.upstreams.all()).toHaveLength(0);
  });

  it.each([
    ['roles as a string', 'admin'],
    ['roles as an object', { admin: true }],
    ['roles with a non-string', ['admin', 1]],
    ['a role that would forge another through the header', ['user,admin']],
    ['a role in another case', ['Admin']],
    ['a role with padding', [' admin']],
  ])('%s gives no admin rights (403), and no upstream is called', async (_, roles) => {
    const token = await signToken({ sub: '7', roles });
    const response = await fetch(`${fx.gateway.url}/admin/users`, { headers: { authorization: `Bearer ${token}` } });
    expect(response.status).toBe(403);
    expect(fx.upstreams.all()).toHaveLength(0);
  });

  it('non-array roles still authenticate as a user without roles', async () => {
    const token = await signToken({ sub: '7', roles: 'admin' });
    const response = await fetch(`${fx.gateway.url}/users/me`, { headers: { authorization: `Bearer ${token}` } });
    expect(response.status).toBe(200);
    expect(fx.upstreams.upstreams.users.requests[0]?.headers['x-user-roles']).toBe('');
  });

  it('accepts a token within the clock tolerance, refuses one beyond it', async () => {
    const justExpired = await signToken({ sub: '7', roles: ['user'], exp: now() - 2 }, { expiresIn: null });
    expect((await fetch(`${fx.gateway.url}/users/me`, { headers: { authorization: `Bearer ${justExpired}` } })).status).toBe(200);
    const longExpired = await signToken({ sub: '7', roles: ['user'], exp: now() - 30 }, { expiresIn: null });
    expect((await fetch(`${fx.gateway.url}/users/me`, { headers: { authorization: `Bearer ${longExpired}` } })).status).toBe(401);
  });

  it('enforces JWT_ISSUER and JWT_AUDIENCE when configured', async () => {
    const strict = await startGateway(fx.upstreams.urls, { JWT_SECRET_KEY: TEST_SECRET, JWT_ISSUER: 'https://auth.tv.example', JWT_AUDIENCE: 'tv-api' });
    try {
      const statusWith = async (claims: Record<string, unknown>) =>
        (await fetch(`${strict.url}/users/me`, { headers: { authorization: `Bearer ${await signToken({ sub: '1', roles: ['user'], ...claims })}` } })).status;
      expect(await statusWith({ iss: 'https://auth.tv.example', aud: 'tv-api' })).toBe(200);
      expect(await statusWith({ iss: 'https://auth.tv.example', aud: ['other', 'tv-api'] })).toBe(200);
      expect(await statusWith({ aud: 'tv-api' })).toBe(401);
      expect(await statusWith({ iss: 'https://evil.example', aud: 'tv-api' })).toBe(401);
      expect(await statusWith({ iss: 'https://auth.tv.example' })).toBe(401);
      expect(await statusWith({ iss: 'https://auth.tv.example', aud: 'other' })).toBe(401);
      expect(fx.upstreams.all()).toHaveLength(2);
    } finally {
      await strict.close();
    }
  });
});

describe('an attacker’s paths', () => {
  const bearer = (token: string) => ({ Authorization: `Bearer ${token}` });

  it.each([
    ['/users/../admin/users', 403],
    ['/users/%2e%2e/admin/users', 403],
    ['/users/%2E%2E/admin/users', 403],
    ['/users/.%2e/admin/users', 403],
    ['/users/./../admin/users', 403],
    ['/users//..//admin/users', 403],
    ['//admin/users', 403],
    ['/admin//users', 403],
    ['/users/..%2fadmin/users', 400],
    ['/users%2f..%2fadmin/users', 400],
    ['/users/%2F../admin/users', 400],
    ['/users/%5c..%5cadmin/users', 400],
    ['/users/..\\admin/users', 400],
    ['/users\\..\\admin\\users', 400],
    ['/users;/../admin/users', 400],
    ['/admin;x/users', 400],
    ['/users/%3b/../admin/users', 400],
    ['/users/%252e%252e/admin/users', 400],
    ['/users/%00/../admin/users', 400],
    ['/users/%2', 400],
    ['/users/%zz', 400],
    ['/users/%ff', 400],
    ['/users/%C0%AF', 400],
    ['/users/%ED%A0%80', 400],
    ['/ADMIN/users', 404],
    ['/Admin/Users', 404],
    ['/admin/USERS', 403],
    ['/USERS/me', 404],
    ['//evil.example/admin/users', 404],
    ['http://127.0.0.1/admin/users', 400],
    ['http://evil.example/users/me', 400],
    ['*', 400],
  ])('%s with a user token is %i and reaches no upstream', async (target, status) => {
    const response = await rawGet(fx.gateway.url, target, bearer(user));
    expect(response.status).toBe(status);
    expect(response.text).toContain('application/problem+json');
    expect(fx.upstreams.all()).toHaveLength(0);
  });

  it('forwards a path with dot segments as the normalised path it was authorised as', async () => {
    const response = await rawGet(fx.gateway.url, '/admin/../users/./me/%7euser?x=/../admin', bearer(user));
    expect(response.status).toBe(200);
    expect(fx.upstreams.all().map((request) => [request.url, request.headers['x-user-id']])).toEqual([['/users/me/~user?x=/../admin', '42']]);
  });

  it('lets an admin reach the same normalised admin path, so normalisation is not just a refusal', async () => {
    const response = await rawGet(fx.gateway.url, '/users/%2e%2e/admin/users', bearer(admin));
    expect(response.status).toBe(200);
    expect(fx.upstreams.upstreams.users.requests.map((request) => request.url)).toEqual(['/admin/users']);
  });

  it('a spoofed X-User-Roles header does not get a user past the admin check', async () => {
    const response = await rawGet(fx.gateway.url, '/users/../admin/users', { ...bearer(user), 'X-User-Roles': 'admin' });
    expect(response.status).toBe(403);
    expect(fx.upstreams.all()).toHaveLength(0);
  });
});

/** Identity freshness: roles as they are now, and signing keys as they are now, or a clear 503 when they cannot be had. */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK } from 'jose';
import { afterAll, beforeAll, describe, expect, it, onTestFinished, vi } from 'vitest';
import { createTokenVerifier } from '../../gateway/src/auth/verifier.js';
import { loadConfig } from '../../gateway/src/config.js';
import { GatewayError } from '../../gateway/src/errors.js';
import { freePortBlock } from '../helpers/ports.js';
import { useStack } from '../helpers/stack.js';
import { graphql, onlyError } from '../helpers/graphql.js';
import { login } from '../helpers/login.js';

describe('a demoted admin, whose token still says admin', () => {
  const fx = useStack({ upstreams: 'reference' });
  let stale: string;

  beforeAll(async () => {
    stale = await login(fx.gateway.url, 'admin', 'graphql');
    const other = await login(fx.gateway.url, 'admin', 'graphql');
    // The admin is demoted (by an admin session) while the earlier token is still valid for an hour.
    const demoted = await fetch(`${fx.gateway.url}/admin/users/3/roles`, { method: 'PUT', headers: { authorization: `Bearer ${other}`, 'content-type': 'application/json' }, body: '{"roles":["user"]}' });
    expect(demoted.status).toBe(200);
  });

  const rest = (method: string, path: string, body?: unknown) =>
    fetch(`${fx.gateway.url}${path}`, { method, headers: { authorization: `Bearer ${stale}`, 'content-type': 'application/json' }, ...(body ? { body: JSON.stringify(body) } : {}) });

  it.each([
    ['GET', '/admin/users', undefined],
    ['POST', '/admin/ondemand/movies', { title: 'X', genres: [], free: true }],
    ['POST', '/admin/livetv/channels', { name: 'X', number: 999, free: true }],
    ['GET', '/admin/rights/entitlements', undefined],
  ] as const)('is refused %s %s by the service, which asks the user store', async (method, path, body) => {
    const response = await rest(method, path, body);
    expect(response.status).toBe(403);
    expect(await response.json()).toMatchObject({ detail: 'Admin access required' });
  });

  it('cannot promote itself back, on REST or GraphQL', async () => {
    expect((await rest('PUT', '/admin/users/3/roles', { roles: ['user', 'admin'] })).status).toBe(403);
    const answer = await graphql(fx.gateway.url, 'mutation { adminSetUserRoles(id: "3", roles: ["user", "admin"]) { roles } }', { token: stale });
    expect(onlyError(answer)).toMatchObject({ code: 'FORBIDDEN', message: 'Admin access required' });
    expect(onlyError(await graphql(fx.gateway.url, '{ adminUsers { id } }', { token: stale })).code).toBe('FORBIDDEN');
    // A fresh login carries the roles as they are now.
    const fresh = await login(fx.gateway.url, 'admin', 'graphql');
    expect((await fetch(`${fx.gateway.url}/admin/users`, { headers: { authorization: `Bearer ${fresh}` } })).status).toBe(403);
  });
});

describe('a token signed with a key the cached key set does not have yet', () => {
  let server: Server;
  let url: string;
  const published: JWK[] = [];
  let fetches = 0;

  async function key(kid: string): Promise<CryptoKey> {
    const { privateKey, publicKey } = await generateKeyPair('ES256');
    published.push({ ...(await exportJWK(publicKey)), kid, alg: 'ES256', use: 'sig' });
    return privateKey;
  }

  const sign = (privateKey: CryptoKey, kid: string) => new SignJWT({ roles: ['user'] }).setProtectedHeader({ alg: 'ES256', kid }).setSubject('5').setExpirationTime('1h').sign(privateKey);

  beforeAll(async () => {
    server = createServer((_req, res) => {
      fetches += 1;
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: published }));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/jwks.json`;
  });
  afterAll(async () => new Promise((resolve) => server.close(resolve)));

  it('is accepted at once: the key set is fetched again for an unknown kid, at most once a second for made-up ones', async () => {
    // The verifier reads Date.now: it stands still until the test moves it, however slow this machine.
    vi.useFakeTimers({ toFake: ['Date'] });
    onTestFinished(() => void vi.useRealTimers());
    const verifier = await createTokenVerifier(loadConfig({ JWKS_URL: url }).jwt);
    const first = await key('k1');
    expect((await verifier.verify(await sign(first, 'k1'))).sub).toBe('5');
    expect(fetches).toBe(1);

    // The identity provider rotates; a token with the new key arrives straight away.
    const second = await key('k2');
    expect((await verifier.verify(await sign(second, 'k2'))).sub).toBe('5');
    expect(fetches).toBe(2);

    // Tokens with made-up kids, many at once: refused, and none makes a fetch within the second.
    const { privateKey } = await generateKeyPair('ES256');
    const madeUp = (count: number, from: number) => Promise.all(Array.from({ length: count }, async (_, i) => verifier.verify(await sign(privateKey, `made-up-${from + i}`)).then(() => 'accepted', (error: { code?: string }) => error.code)));
    expect(new Set(await madeUp(50, 0))).toEqual(new Set(['UNAUTHENTICATED']));
    expect(fetches).toBe(2);
    // A second later, one more fetch, and again none for the rest of that second.
    vi.setSystemTime(Date.now() + 1000);
    expect(new Set(await madeUp(50, 50))).toEqual(new Set(['UNAUTHENTICATED']));
    expect(fetches).toBe(3);
  });
});

describe('a key set that cannot be fetched', () => {
  const servers: Server[] = [];
  afterAll(async () => Promise.all(servers.map((server) => new Promise((resolve) => server.close(resolve)))));

  async function serve(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<string> {
    const server = createServer(handler);
    servers.push(server);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return `http://127.0.0.1:${(server.address() as AddressInfo).port}/jwks.json`;
  }

  async function es256Token(): Promise<string> {
    const { privateKey } = await generateKeyPair('ES256');
    return new SignJWT({ roles: ['user'] }).setProtectedHeader({ alg: 'ES256', kid: 'k1' }).setSubject('5').setExpirationTime('1h').sign(privateKey);
  }

  it.each([
    ['unreachable', async () => `http://127.0.0.1:${await freePortBlock(1)}/jwks.json`],
    ['answering 500', async () => serve((_req, res) => void res.writeHead(500).end('oops'))],
    ['answering something that is not a key set', async () => serve((_req, res) => void res.writeHead(200, { 'content-type': 'application/json' }).end('{"keys": "nope"}'))],
    ['answering text', async () => serve((_req, res) => void res.writeHead(200).end('<html>'))],
  ])('when %s is UPSTREAM_UNAVAILABLE (503), never a verdict on the token', async (_, url) => {
    const verifier = await createTokenVerifier(loadConfig({ JWKS_URL: await url() }).jwt);
    const failure = await verifier.verify(await es256Token()).catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(GatewayError);
    expect(failure).toMatchObject({ code: 'UPSTREAM_UNAVAILABLE', detail: 'Token signing keys are unavailable' });
    expect((failure as GatewayError).cause).toBeDefined();
  });
});

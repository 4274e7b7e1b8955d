import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { generateKeyPair, SignJWT } from 'jose';
import { afterAll, describe, expect, it } from 'vitest';
import { TokenCache } from '../../gateway/src/auth/token-cache.js';
import { createTokenVerifier } from '../../gateway/src/auth/verifier.js';
import { loadConfig } from '../../gateway/src/config.js';
import { GatewayError } from '../../gateway/src/errors.js';
import { freePortBlock } from '../helpers/ports.js';
import { signToken, TEST_SECRET } from '../helpers/tokens.js';

const identity = (expiresAtMs: number) => ({ sub: '1', roles: ['user'], expiresAtMs });

describe('the verified-token cache', () => {
  it('serves an entry until its token expires, never after', () => {
    const cache = new TokenCache();
    const now = 1_000_000;
    cache.set('t', identity(now + 60_000), now);
    expect(cache.get('t', now + 59_999)).toEqual(identity(now + 60_000));
    expect(cache.get('t', now + 60_000)).toBeUndefined();
    expect(cache.get('t', now)).toBeUndefined();
  });

  it('does not store a token that has already expired', () => {
    const cache = new TokenCache();
    cache.set('t', identity(Date.now() - 1));
    expect(cache.size).toBe(0);
  });

  it('is bounded, evicting the least recently used', () => {
    const cache = new TokenCache(2);
    const later = Date.now() + 60_000;
    cache.set('a', identity(later));
    cache.set('b', identity(later));
    cache.get('a');
    cache.set('c', identity(later));
    expect(cache.get('b')).toBeUndefined();
    expect(cache.get('a')).toBeDefined();
    expect(cache.get('c')).toBeDefined();
  });
});

describe('the token verifier', () => {
  const config = loadConfig({ JWT_SECRET_KEY: TEST_SECRET }).jwt;

  it('verifies a token once and then recognises it from the cache', async () => {
    const verifier = await createTokenVerifier(config);
    const token = await signToken({ sub: '5', roles: ['user', 'admin'] });
    expect(verifier.cache.get(token)).toBeUndefined();
    const first = await verifier.verify(token);
    expect(first).toMatchObject({ sub: '5', roles: ['user', 'admin'] });
    expect(verifier.cache.get(token)).toBe(first);
    expect(await verifier.verify(token)).toBe(first);
    expect(verifier.cache.size).toBe(1);
  });

  it('never caches a failure', async () => {
    const verifier = await createTokenVerifier(config);
    const forged = await signToken({ sub: '5' }, { secret: 'some-other-secret-that-is-long-enough-too' });
    for (let i = 0; i < 2; i++) {
      await expect(verifier.verify(forged)).rejects.toBeInstanceOf(GatewayError);
    }
    expect(verifier.cache.size).toBe(0);
  });

  it('keeps the expiry of the token in the identity it caches', async () => {
    const verifier = await createTokenVerifier(config);
    const exp = Math.floor(Date.now() / 1000) + 120;
    const token = await signToken({ sub: '5', exp }, { expiresIn: null });
    expect((await verifier.verify(token)).expiresAtMs).toBe(exp * 1000);
    expect(verifier.cache.get(token, exp * 1000)).toBeUndefined();
  });
});

describe('a key set that cannot be fetched', () => {
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

const servers: Server[] = [];
afterAll(async () => Promise.all(servers.map((server) => new Promise((resolve) => server.close(resolve)))));

async function serve(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<string> {
  const server = createServer(handler);
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}/jwks.json`;
}

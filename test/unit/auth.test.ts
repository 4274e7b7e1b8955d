import { createHmac } from 'node:crypto';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { TokenCache } from '../../gateway/src/auth/token-cache.js';
import { createTokenVerifier } from '../../gateway/src/auth/verifier.js';
import { loadConfig } from '../../gateway/src/config.js';
import { GatewayError } from '../../gateway/src/errors.js';
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

describe('the verified-token cache, from an attacker\'s side', () => {
  const config = loadConfig({ JWT_SECRET_KEY: TEST_SECRET }).jwt;
  afterEach(() => vi.useRealTimers());

  /** What verifying says at this moment: the subject, or the refusal's detail. */
  const outcome = (verifier: Awaited<ReturnType<typeof createTokenVerifier>>, token: string) =>
    verifier.verify(token).then(
      (identity) => identity.sub,
      (error: unknown) => (error instanceof GatewayError ? error.message : error),
    );

  it('never accepts an expired token longer than a verification would: the cache stops serving it at its exp', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    const exp = Math.floor(Date.now() / 1000) + 60;
    const token = await signToken({ sub: '5', exp }, { expiresIn: null });
    const cached = await createTokenVerifier(config);
    expect(await outcome(cached, token)).toBe('5');
    expect(cached.cache.size).toBe(1);
    // Just before, at, and past exp (jose allows 5 s of clock tolerance, the same with the cache or without it).
    for (const [atMs, expected] of [
      [exp * 1000 - 1, '5'],
      [exp * 1000, '5'],
      [exp * 1000 + 5000, 'Token has expired'],
      [exp * 1000 + 3_600_000, 'Token has expired'],
    ] as const) {
      vi.setSystemTime(atMs);
      expect(await outcome(await createTokenVerifier(config), token), `verified afresh at exp ${(atMs - exp * 1000) / 1000} s`).toBe(expected);
      expect(await outcome(cached, token), `through the cache at exp ${(atMs - exp * 1000) / 1000} s`).toBe(expected);
      if (atMs >= exp * 1000) expect(cached.cache.get(token)).toBeUndefined();
    }
  });

  it('never serves a token with a bad signature from the cache, however close it is to one it holds', async () => {
    const verifier = await createTokenVerifier(config);
    const token = await signToken({ sub: '5', roles: ['user'] });
    await verifier.verify(token);
    const [header = '', payload = '', signature = ''] = token.split('.');
    const otherPayload = Buffer.from(JSON.stringify({ ...(JSON.parse(Buffer.from(payload, 'base64url').toString()) as object), roles: ['user', 'admin'] })).toString('base64url');
    const forgeries = {
      'its signature altered': `${header}.${payload}.${signature.startsWith('A') ? 'B' : 'A'}${signature.slice(1)}`,
      'its claims with another signature': await signToken({ sub: '5', roles: ['user'] }, { secret: 'some-other-secret-that-is-long-enough-too' }),
      'other claims under its signature': `${header}.${otherPayload}.${signature}`,
      'no signature': `${header}.${payload}.`,
    };
    for (const [forgery, forged] of Object.entries(forgeries)) {
      for (let attempt = 0; attempt < 2; attempt++) {
        await expect(verifier.verify(forged), forgery).rejects.toBeInstanceOf(GatewayError);
        expect(verifier.cache.get(forged), forgery).toBeUndefined();
      }
    }
    expect(verifier.cache.size).toBe(1);
    expect((await verifier.verify(token)).roles).toEqual(['user']);
  });

  it('stays bounded under 100,000 distinct valid tokens', () => {
    const cache = new TokenCache();
    const later = Date.now() + 60_000;
    for (let i = 0; i < 100_000; i++) cache.set(`token-${i}`, { sub: String(i), roles: ['user'], expiresAtMs: later });
    expect(cache.size).toBe(10_000);
    expect(cache.get('token-99999')?.sub).toBe('99999');
    expect(cache.get('token-0')).toBeUndefined();
  });

  it('is the bound the verifier keeps: distinct tokens past it evict the least recently used, each still verified', async () => {
    const verifier = await createTokenVerifier(config, { cache: new TokenCache(100) });
    // HS256 signed here with node:crypto: a few hundred tokens in milliseconds.
    const encode = (value: object) => Buffer.from(JSON.stringify(value)).toString('base64url');
    const exp = Math.floor(Date.now() / 1000) + 3600;
    const tokens = Array.from({ length: 300 }, (_, i) => {
      const unsigned = `${encode({ alg: 'HS256', typ: 'JWT' })}.${encode({ sub: String(i), roles: ['user'], exp })}`;
      return `${unsigned}.${createHmac('sha256', TEST_SECRET).update(unsigned).digest('base64url')}`;
    });
    for (const token of tokens) await verifier.verify(token);
    expect(verifier.cache.size).toBe(100);
    expect(verifier.cache.get(tokens[0] ?? '')).toBeUndefined();
    expect((await verifier.verify(tokens[0] ?? '')).sub).toBe('0');
  });
});

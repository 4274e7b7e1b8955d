import { describe, expect, it } from 'vitest';
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

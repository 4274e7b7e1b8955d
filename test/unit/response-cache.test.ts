import { describe, expect, it } from 'vitest';
import { LocalInvalidations } from '../../gateway/src/cluster/bus.js';
import type { Identity } from '../../gateway/src/auth/identity.js';
import { ResponseCachePolicy } from '../../gateway/src/graphql/cache-policy.js';
import { GraphQLResponseCache, MAX_ENTRIES_PER_OWNER, OWNER_SHARE, type OfferedResponse, type ResponseKey } from '../../gateway/src/graphql/response-cache.js';
import type { UpstreamName } from '../../shared/upstreams.js';

/** A cache on a clock the test moves, with the bus of one process. */
function cacheAt(start = 1_000_000, maxBytes = 1024 * 1024) {
  const clock = { now: start };
  const invalidations = new LocalInvalidations();
  const cache = new GraphQLResponseCache({ maxBytes, maxEntryBytes: 64 * 1024, invalidations, now: () => clock.now });
  const get = async (key: ResponseKey) => (await cache.get(key))?.stored;
  return { cache, clock, invalidations, get };
}

function response(cacheControl: string, upstreams: readonly UpstreamName[] = ['rights'], body = '{"data":{"plans":[]}}', type: 'query' | 'mutation' = 'query'): OfferedResponse {
  return { headers: [['content-type', 'application/json; charset=utf-8'], ['cache-control', cacheControl]], body, operation: { name: 'Plans', type }, upstreams: new Set(upstreams) };
}

const POST = { 'content-type': 'application/json' };

describe('the GraphQL response cache', () => {
  it('keeps a public response for its max-age, telling its age, and not a moment longer', async () => {
    const { cache, clock, get } = cacheAt();
    const key = cache.keyOf('POST', POST, '', '{"query":"{ plans { id } }"}');
    cache.offer(key, response('public, max-age=60'));
    clock.now += 5_400;
    const stored = await get(key);
    expect(stored?.body).toBe('{"data":{"plans":[]}}');
    expect(stored && cache.ageOf(stored)).toBe(5);
    clock.now += 54_700;
    expect(await get(key)).toBeUndefined();
  });

  it.each(['no-store', 'public, max-age=0', 'private, max-age=60', 'max-age=60', ''])('never keeps an anonymous response that says %j', async (cacheControl) => {
    const { cache, get } = cacheAt();
    const key = cache.keyOf('POST', POST, '', '{"query":"{ me { id } }"}');
    cache.offer(key, response(cacheControl));
    expect(await get(key)).toBeUndefined();
  });

  it('never keeps a response that no upstream answer vouched for', async () => {
    const { cache, get } = cacheAt();
    const key = cache.keyOf('POST', POST, '', '{"query":"{ __typename }"}');
    cache.offer(key, response('public, max-age=60', []));
    expect(await get(key)).toBeUndefined();
  });

  it('tells apart what Apollo answers differently: body, query string, method, media type, CSRF headers', () => {
    const { cache } = cacheAt();
    const base = cache.keyOf('POST', POST, '', '{"query":"{ plans { id } }"}');
    const others = [
      cache.keyOf('POST', POST, '', '{"query":"{ plans { id name } }"}'),
      cache.keyOf('POST', POST, '', '{"query":"{ plans { id } }","variables":{"x":1}}'),
      cache.keyOf('GET', POST, '?query=%7B%20plans%20%7B%20id%20%7D%20%7D', ''),
      cache.keyOf('POST', { ...POST, accept: 'application/graphql-response+json' }, '', '{"query":"{ plans { id } }"}'),
      cache.keyOf('POST', { 'content-type': 'text/plain' }, '', '{"query":"{ plans { id } }"}'),
      cache.keyOf('GET', { 'apollo-require-preflight': 'true' }, '?query=x', ''),
      cache.keyOf('GET', {}, '?query=x', ''),
    ];
    expect(new Set([base, ...others].map((key) => key.text)).size).toBe(others.length + 1);
    // Headers Apollo does not read are not part of the key.
    expect(cache.keyOf('POST', { ...POST, 'user-agent': 'tv/1.0', 'x-request-id': 'r1' }, '', '{"query":"{ plans { id } }"}')).toEqual(base);
  });

  it('drops what an upstream change outdates, and only that', async () => {
    const { cache, get, invalidations } = cacheAt();
    const plans = cache.keyOf('POST', POST, '', 'plans');
    const movies = cache.keyOf('POST', POST, '', 'movies');
    const search = cache.keyOf('POST', POST, '', 'search');
    cache.offer(plans, response('public, max-age=60', ['rights']));
    cache.offer(movies, response('public, max-age=60', ['ondemand']));
    cache.offer(search, response('public, max-age=60', ['search', 'ondemand']));
    invalidations.publish('ondemand');
    expect(await get(plans)).toBeDefined();
    expect(await get(movies)).toBeUndefined();
    expect(await get(search)).toBeUndefined();
  });

  it('stays within its byte bound: the least recently used goes first, an oversized response is never kept', async () => {
    const { cache, get } = cacheAt(0, 4096);
    const keys = Array.from({ length: 8 }, (_, index) => cache.keyOf('POST', POST, '', `query ${index}`));
    for (const key of keys) cache.offer(key, response('public, max-age=60', ['rights'], 'x'.repeat(900)));
    expect((await Promise.all(keys.map((key) => get(key)))).filter((stored) => stored !== undefined).length).toBeLessThan(keys.length);
    expect(await get(keys.at(-1) as ResponseKey)).toBeDefined();
    const huge = cache.keyOf('POST', POST, '', 'huge');
    cache.offer(huge, response('public, max-age=60', ['rights'], 'x'.repeat(100 * 1024)));
    expect(await get(huge)).toBeUndefined();
  });
});

/** A caller with a token: what the request's Authorization header says, and who the verified token says it is. */
function caller(token: string, sub: string, roles: readonly string[] = ['user'], expiresAtMs = Number.MAX_SAFE_INTEGER) {
  const identity: Identity = { sub, roles, expiresAtMs };
  return { headers: { ...POST, authorization: `Bearer ${token}` }, identity };
}

describe('the GraphQL response cache, per identity', () => {
  const ME = '{"query":"{ me { id } }"}';
  const keyFor = (cache: GraphQLResponseCache, who: ReturnType<typeof caller>, body = ME) => cache.keyOf('POST', who.headers, '', body, who.identity);

  it('answers a private response again only to the token it was made for: never another user, another token of the same subject, nor an anonymous caller', async () => {
    const { cache, clock, get } = cacheAt();
    const alice = caller('token-of-alice', '1');
    cache.offer(keyFor(cache, alice), response('private, max-age=10', ['users'], '{"data":{"me":{"id":"1"}}}'));
    clock.now += 2_000;
    const found = await get(keyFor(cache, alice));
    expect(found?.body).toBe('{"data":{"me":{"id":"1"}}}');
    expect(found && cache.ageOf(found)).toBe(2);
    expect(await get(keyFor(cache, caller('token-of-bob', '2')))).toBeUndefined();
    // The same subject with another token (another role, or just a fresh login): an entry of its own.
    expect(await get(keyFor(cache, caller('admin-token-of-alice', '1', ['user', 'admin'])))).toBeUndefined();
    expect(await get(keyFor(cache, caller('second-token-of-alice', '1')))).toBeUndefined();
    expect(await get(cache.keyOf('POST', POST, '', ME))).toBeUndefined();
    clock.now += 8_001;
    expect(await get(keyFor(cache, alice))).toBeUndefined();
  });

  it('keys by a digest of the token, never its text', () => {
    const { cache } = cacheAt();
    const token = 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl';
    const key = keyFor(cache, caller(token, '1'));
    expect(key.text).not.toContain(token);
    expect(key.text).not.toContain(token.split('.')[2]);
    expect(JSON.stringify(key)).not.toContain(token);
  });

  it('never keeps a response past its token’s expiry', async () => {
    const { cache, clock, get } = cacheAt();
    const alice = caller('short-lived', '1', ['user'], clock.now + 3_000);
    cache.offer(keyFor(cache, alice), response('private, max-age=10', ['users']));
    clock.now += 2_900;
    expect(await get(keyFor(cache, alice))).toBeDefined();
    clock.now += 200;
    expect(await get(keyFor(cache, alice))).toBeUndefined();
    // A token already expired keeps nothing.
    const expired = caller('expired', '1', ['user'], clock.now - 1);
    cache.offer(keyFor(cache, expired), response('private, max-age=10', ['users']));
    expect(await get(keyFor(cache, expired))).toBeUndefined();
  });

  it.each(['no-store', 'public, max-age=60', 'private, max-age=0', 'private', 'max-age=60'])('never keeps a response to a token that says %j', async (cacheControl) => {
    const { cache, get } = cacheAt();
    const alice = caller('token-of-alice', '1');
    cache.offer(keyFor(cache, alice), response(cacheControl, ['users']));
    expect(await get(keyFor(cache, alice))).toBeUndefined();
  });

  it('never keeps the answer to a mutation, anonymous or not', async () => {
    const { cache, get } = cacheAt();
    const alice = caller('token-of-alice', '1');
    cache.offer(keyFor(cache, alice), response('private, max-age=10', ['rights'], '{}', 'mutation'));
    expect(await get(keyFor(cache, alice))).toBeUndefined();
    const anonymous = cache.keyOf('POST', POST, '', 'mutation');
    cache.offer(anonymous, response('public, max-age=10', ['rights'], '{}', 'mutation'));
    expect(await get(anonymous)).toBeUndefined();
  });

  it('drops a personal response when an upstream it was made of changes, and only then', async () => {
    const { cache, get, invalidations } = cacheAt();
    const alice = caller('token-of-alice', '1');
    const entitlements = keyFor(cache, alice, 'entitlements');
    const me = keyFor(cache, alice, 'me');
    cache.offer(entitlements, response('private, max-age=10', ['ondemand', 'rights']));
    cache.offer(me, response('private, max-age=10', ['users']));
    invalidations.publish('rights');
    expect(await get(entitlements)).toBeUndefined();
    expect(await get(me)).toBeDefined();
  });

  it('lets no subject, with however many tokens and queries, evict anyone else’s entries, nor the anonymous ones', async () => {
    const maxBytes = 256 * 1024;
    const { cache, get } = cacheAt(0, maxBytes);
    const body = 'x'.repeat(1000);
    const victims = ['1', '2', '3'].map((sub) => keyFor(cache, caller(`token-${sub}`, sub), 'me'));
    for (const key of victims) cache.offer(key, response('private, max-age=10', ['users'], body));
    const anonymous = cache.keyOf('POST', POST, '', 'plans');
    cache.offer(anonymous, response('public, max-age=60', ['rights'], body));
    // One subject, 20 tokens, 50 queries each: a thousand responses, far more than the whole cache holds.
    const attacker = Array.from({ length: 20 }, (_, index) => caller(`attacker-token-${index}`, '666'));
    const attacks = attacker.flatMap((who) => Array.from({ length: 50 }, (_, index) => keyFor(cache, who, `query ${index}`)));
    for (const key of attacks) cache.offer(key, response('private, max-age=10', ['users'], body));
    for (const key of [...victims, anonymous]) expect(await get(key)).toBeDefined();
    // The attacker keeps its latest few, within its share.
    const kept = (await Promise.all(attacks.map((key) => get(key)))).filter((stored) => stored !== undefined);
    expect(kept.length).toBeGreaterThan(0);
    expect(kept.length).toBeLessThanOrEqual(MAX_ENTRIES_PER_OWNER);
    expect(kept.length * (body.length + 256)).toBeLessThanOrEqual((maxBytes / 2) * OWNER_SHARE);
    expect(await get(attacks.at(-1) as ResponseKey)).toBeDefined();
  });

  it('lets many subjects fill only the personal half: the anonymous responses stay', async () => {
    const maxBytes = 64 * 1024;
    const { cache, get } = cacheAt(0, maxBytes);
    const anonymous = cache.keyOf('POST', POST, '', 'plans');
    cache.offer(anonymous, response('public, max-age=60', ['rights'], 'x'.repeat(1000)));
    const many = Array.from({ length: 500 }, (_, index) => keyFor(cache, caller(`token-${index}`, `user-${index}`), 'me'));
    for (const key of many) cache.offer(key, response('private, max-age=10', ['users'], 'x'.repeat(1000)));
    expect(await get(anonymous)).toBeDefined();
    const kept = (await Promise.all(many.map((key) => get(key)))).filter((stored) => stored !== undefined).length;
    expect(kept).toBeGreaterThan(0);
    expect(kept * 1000).toBeLessThanOrEqual(maxBytes / 2);
  });
});

describe('the Cache-Control of a GraphQL response', () => {
  const NOW = 1_000_000;
  const identity = (expiresAtMs = NOW + 3_600_000): Identity => ({ sub: '1', roles: ['user'], expiresAtMs });
  const policyOf = (...answers: Record<string, string>[]) => {
    const policy = new ResponseCachePolicy();
    for (const headers of answers) policy.note('users', headers);
    return policy;
  };

  it('is public only for an anonymous caller whose every answer was public', () => {
    expect(policyOf({ 'cache-control': 'public, max-age=60' }, { 'cache-control': 'public, max-age=300', age: '10' }).header({ failed: false, now: NOW })).toBe('public, max-age=60');
    expect(policyOf({ 'cache-control': 'public, max-age=60' }, { 'cache-control': 'private, max-age=10' }).header({ failed: false, now: NOW })).toBe('no-store');
  });

  it('is private, for the least lifetime, for a token whose every answer was public or private with a lifetime', () => {
    const mixed = policyOf({ 'cache-control': 'public, max-age=60' }, { 'cache-control': 'private, max-age=10' });
    expect(mixed.header({ identity: identity(), failed: false, now: NOW })).toBe('private, max-age=10');
    expect(policyOf({ 'cache-control': 'public, s-maxage=300' }).header({ identity: identity(), failed: false, now: NOW })).toBe('private, max-age=300');
    // Never past the token's expiry.
    expect(mixed.header({ identity: identity(NOW + 4_500), failed: false, now: NOW })).toBe('private, max-age=4');
    expect(mixed.header({ identity: identity(NOW + 500), failed: false, now: NOW })).toBe('no-store');
  });

  it.each([
    [{ 'cache-control': 'private, no-store, max-age=10' }],
    [{ 'cache-control': 'private, no-cache, max-age=10' }],
    [{ 'cache-control': 'private' }],
    [{ 'cache-control': 'max-age=10' }],
    [{ 'cache-control': 'private, max-age=10', vary: 'accept-language' }],
    [{}],
  ])('is no-store for a token when an answer said %j', (answer) => {
    expect(policyOf({ 'cache-control': 'public, max-age=60' }, answer).header({ identity: identity(), failed: false, now: NOW })).toBe('no-store');
  });

  it('is no-store after an error, or with no upstream answer at all', () => {
    expect(policyOf({ 'cache-control': 'private, max-age=10' }).header({ identity: identity(), failed: true, now: NOW })).toBe('no-store');
    expect(policyOf().header({ identity: identity(), failed: false, now: NOW })).toBe('no-store');
    expect(policyOf().header({ failed: false, now: NOW })).toBe('no-store');
  });
});

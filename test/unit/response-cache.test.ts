import { describe, expect, it } from 'vitest';
import { LocalInvalidations } from '../../gateway/src/cluster/bus.js';
import { GraphQLResponseCache, type OfferedResponse } from '../../gateway/src/graphql/response-cache.js';
import type { UpstreamName } from '../../shared/upstreams.js';

/** A cache on a clock the test moves, with the bus of one process. */
function cacheAt(start = 1_000_000, maxBytes = 1024 * 1024) {
  const clock = { now: start };
  const invalidations = new LocalInvalidations();
  const cache = new GraphQLResponseCache({ maxBytes, maxEntryBytes: 64 * 1024, invalidations, now: () => clock.now });
  const get = async (key: string) => (await cache.get(key))?.stored;
  return { cache, clock, invalidations, get };
}

function response(cacheControl: string, upstreams: readonly UpstreamName[] = ['rights'], body = '{"data":{"plans":[]}}'): OfferedResponse {
  return { headers: [['content-type', 'application/json; charset=utf-8'], ['cache-control', cacheControl]], body, operation: { name: 'Plans', type: 'query' }, upstreams: new Set(upstreams) };
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

  it.each(['no-store', 'public, max-age=0', 'private, max-age=60', 'max-age=60', ''])('never keeps a response that says %j', async (cacheControl) => {
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
    expect(new Set([base, ...others]).size).toBe(others.length + 1);
    // Headers Apollo does not read are not part of the key.
    expect(cache.keyOf('POST', { ...POST, 'user-agent': 'tv/1.0', 'x-request-id': 'r1' }, '', '{"query":"{ plans { id } }"}')).toBe(base);
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
    expect(await get(keys.at(-1) as string)).toBeDefined();
    const huge = cache.keyOf('POST', POST, '', 'huge');
    cache.offer(huge, response('public, max-age=60', ['rights'], 'x'.repeat(100 * 1024)));
    expect(await get(huge)).toBeUndefined();
  });
});

import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it, onTestFinished, vi } from 'vitest';
import { MemoryRateLimiter } from '../../gateway/src/ratelimit/memory.js';
import { bucketShape } from '../../gateway/src/ratelimit/limiter.js';
import { upstreamEnvironment } from '../../shared/upstreams.js';
import { useStack } from '../helpers/stack.js';
import { captureLog, startGateway } from '../helpers/gateway.js';
import { graphql } from '../helpers/graphql.js';
import { sample, storeConnected } from '../helpers/metrics.js';
import { useRecordingUpstreams } from '../helpers/recording-upstream.js';
import { spawnGateway } from '../helpers/process.js';
import { TEST_TLS, useRedis } from '../helpers/redis.js';
import { TEST_SECRET, userToken } from '../helpers/tokens.js';
import { eventually } from '../helpers/wait.js';

const get = (url: string, token?: string) => fetch(url, { headers: token ? { authorization: `Bearer ${token}` } : {} });

/** Three requests of one user to a gateway, their statuses. */
async function statusesOf(gatewayUrl: string, user: string): Promise<number[]> {
  const token = await userToken(user);
  const statuses = [];
  for (let request = 0; request < 3; request++) statuses.push((await get(`${gatewayUrl}/users/me`, token)).status);
  return statuses;
}

describe('the token bucket', () => {
  it('allows a burst of the per-minute limit, then refills at that rate', async () => {
    const limiter = new MemoryRateLimiter(bucketShape(60));
    const start = 1_000_000;
    for (let i = 0; i < 60; i++) expect((await limiter.take('k', start)).allowed).toBe(true);
    const refused = await limiter.take('k', start);
    expect(refused).toMatchObject({ allowed: false, remaining: 0, retryAfterSeconds: 1 });
    expect((await limiter.take('k', start + 999)).allowed).toBe(false);
    expect((await limiter.take('k', start + 2000)).allowed).toBe(true);
    expect((await limiter.take('other', start)).allowed).toBe(true);
  });

  it('remembers at most 100,000 clients: the least recently seen is forgotten (a fresh bucket), the rest are kept', async () => {
    const limiter = new MemoryRateLimiter(bucketShape(1));
    const start = 1_000_000;
    expect((await limiter.take('first', start)).allowed).toBe(true);
    expect((await limiter.take('kept', start)).allowed).toBe(true);
    for (let i = 0; i < 99_998; i++) await limiter.take(`client-${i}`, start);
    // 100,000 clients: 'first' (seen again now) and 'kept' are still remembered, their one token spent.
    expect((await limiter.take('first', start)).allowed).toBe(false);
    await limiter.take('one-more', start);
    // 'kept' was the least recently seen: forgotten, so it starts again with a full bucket.
    expect((await limiter.take('kept', start)).allowed).toBe(true);
    expect((await limiter.take('first', start)).allowed).toBe(false);
  });
});

describe('rate limiting in one gateway', () => {
  const fx = useStack({ env: { RATE_LIMIT_PER_MINUTE: '3' } });

  it('answers 429 with Retry-After and RateLimit-* headers once a user’s bucket is empty, calling no upstream', async () => {
    const token = await userToken('rl-1');
    // The limiter reads Date.now: it stands still until the test ends, so the bucket refills by nothing.
    vi.useFakeTimers({ toFake: ['Date'] });
    onTestFinished(() => void vi.useRealTimers());
    for (let i = 0; i < 3; i++) {
      const response = await get(`${fx.gateway.url}/users/me`, token);
      expect(response.status).toBe(200);
      expect(response.headers.get('ratelimit-limit')).toBe('3');
      expect(response.headers.get('ratelimit-remaining')).toBe(String(2 - i));
    }
    const refused = await get(`${fx.gateway.url}/users/me`, token);
    expect(refused.status).toBe(429);
    expect(refused.headers.get('content-type')).toBe('application/problem+json');
    // Three a minute: the next token in 20 s, which both say once refused.
    expect(refused.headers.get('retry-after')).toBe('20');
    expect(refused.headers.get('ratelimit-remaining')).toBe('0');
    expect(refused.headers.get('ratelimit-reset')).toBe('20');
    expect(await refused.json()).toMatchObject({ status: 429, title: 'Too Many Requests' });
    expect(fx.upstreams.all()).toHaveLength(3);

    const graphQLRefused = await graphql(fx.gateway.url, '{ plans { id } }', { token });
    expect(graphQLRefused.status).toBe(429);
    expect(graphQLRefused.errors?.[0]?.extensions).toMatchObject({ code: 'RATE_LIMITED', requestId: expect.any(String) });
    expect(fx.upstreams.all()).toHaveLength(3);
  });

  it('gives each user their own bucket, and anonymous callers one per address', async () => {
    const other = await userToken('rl-2');
    for (let i = 0; i < 3; i++) expect((await get(`${fx.gateway.url}/users/me`, other)).status).toBe(200);
    for (let i = 0; i < 3; i++) expect((await get(`${fx.gateway.url}/search/global?q=a`)).status).toBe(200);
    expect((await get(`${fx.gateway.url}/search/global?q=a`)).status).toBe(429);
    expect((await get(`${fx.gateway.url}/users/me`, await userToken('rl-3'))).status).toBe(200);
  });

  it('never limits health, readiness or metrics, and counts refusals', async () => {
    const refusals = async () => sample(await (await fetch(`${fx.gateway.url}/metrics`)).text(), 'gateway_rate_limited_total') ?? 0;
    const before = await refusals();
    const token = await userToken('rl-4');
    const statuses = [];
    for (let i = 0; i < 4; i++) statuses.push((await get(`${fx.gateway.url}/users/me`, token)).status);
    expect(statuses).toEqual([200, 200, 200, 429]);
    // The caller whose bucket is empty still gets every probe and scrape answered.
    for (const path of ['/health', '/ready', '/metrics', '/health', '/ready', '/metrics']) expect((await get(`${fx.gateway.url}${path}`, token)).status).toBe(200);
    expect(await refusals()).toBe(before + 1);
  });
});

describe('RATE_LIMIT_PER_MINUTE=0', () => {
  const fx = useStack({ env: { RATE_LIMIT_PER_MINUTE: '0' } });

  it('disables the limiter', async () => {
    for (let i = 0; i < 20; i++) {
      const response = await get(`${fx.gateway.url}/search/global?q=a`);
      expect(response.status).toBe(200);
      expect(response.headers.get('ratelimit-limit')).toBeNull();
    }
  });
});

describe('rate limits shared through Redis', () => {
  const redis = useRedis();
  const fx = useStack({ env: () => ({ RATE_LIMIT_PER_MINUTE: '4', REDIS_URL: redis.url }), gateways: 2 });
  beforeAll(() => Promise.all(fx.gateways.map((gateway) => storeConnected(gateway.url))));

  it('draws one bucket per user across every gateway instance', async () => {
    const token = await userToken('shared-1');
    const [first, second] = fx.gateways;
    const statuses = [];
    for (const gateway of [first, second, first, second, first, second]) statuses.push((await get(`${gateway?.url ?? ''}/users/me`, token)).status);
    expect(statuses).toEqual([200, 200, 200, 200, 429, 429]);
    expect(fx.upstreams.all()).toHaveLength(4);
  });

});

describe('rate limits when Redis is gone', () => {
  const redis = useRedis();
  const fx = useStack({ env: () => ({ RATE_LIMIT_PER_MINUTE: '4', REDIS_URL: redis.url }) });
  beforeAll(() => storeConnected(fx.gateway.url));

  it('lets requests through, rather than failing the API', async () => {
    await redis.stop();
    const response = await get(`${fx.gateway.url}/users/me`, await userToken('shared-2'));
    expect(response.status).toBe(200);
  });
});

describe('a Redis with a password', () => {
  const PASSWORD = 'redis-pa55word-for-the-test';
  const redis = useRedis({ password: PASSWORD });
  const upstreams = useRecordingUpstreams();

  const gatewayWith = async (env: NodeJS.ProcessEnv, options: Parameters<typeof startGateway>[2] = {}) => {
    const gateway = await startGateway(upstreams.urls, { JWT_SECRET_KEY: TEST_SECRET, RATE_LIMIT_PER_MINUTE: '2', ...env }, options);
    onTestFinished(() => gateway.close());
    return gateway;
  };

  it('shares the buckets with the password in the URL, or from REDIS_PASSWORD_FILE', async () => {
    const port = new URL(redis.url).port;
    const inUrl = await gatewayWith({ REDIS_URL: `redis://:${PASSWORD}@127.0.0.1:${port}` });
    const dir = mkdtempSync(join(tmpdir(), 'redis-secret-'));
    writeFileSync(join(dir, 'password'), `${PASSWORD}\n`);
    const fromFile = await gatewayWith({ REDIS_URL: redis.url, REDIS_PASSWORD_FILE: join(dir, 'password') });
    await Promise.all([storeConnected(inUrl.url), storeConnected(fromFile.url)]);
    expect(await statusesOf(inUrl.url, 'redis-auth-1')).toEqual([200, 200, 429]);
    // The other instance draws from the same bucket: already empty.
    expect((await get(`${fromFile.url}/users/me`, await userToken('redis-auth-1'))).status).toBe(429);
  });

  it('with a wrong password lets requests through, says so, and never writes the password anywhere', async () => {
    const log = captureLog('debug');
    const wrong = `${PASSWORD}-wrong`;
    const gateway = await gatewayWith({ REDIS_URL: `redis://:${wrong}@${new URL(redis.url).host}` }, { logger: log.logger });
    expect(await statusesOf(gateway.url, 'redis-auth-2')).toEqual([200, 200, 200]);
    const metrics = await (await fetch(`${gateway.url}/metrics`)).text();
    expect(metrics).toMatch(/^gateway_rate_limit_store_up\{[^}]*\} 0$/m);
    // The refusal arrives when Redis answers the AUTH: the outage is logged then.
    await eventually('the log line "Redis unavailable"', () => log.lines.some((line) => String(line.msg).startsWith('Redis unavailable')));
    const written = JSON.stringify(log.lines) + metrics;
    expect(written).not.toContain(wrong);
    expect(written).not.toContain(PASSWORD);
  });
});

describe('a Redis over TLS (rediss://) with a password', () => {
  const PASSWORD = 'tls-redis-pa55word';
  const redis = useRedis({ password: PASSWORD, tls: true });
  const upstreams = useRecordingUpstreams();

  it('limits through a server whose certificate the gateway trusts', async () => {
    // A process of its own: Node reads NODE_EXTRA_CA_CERTS (how a private CA is trusted) at start only.
    const gateway = await spawnGateway({ JWT_SECRET_KEY: TEST_SECRET, RATE_LIMIT_PER_MINUTE: '2', REDIS_URL: redis.url, REDIS_PASSWORD: PASSWORD, NODE_EXTRA_CA_CERTS: TEST_TLS.ca, ...upstreamEnvironment(upstreams.urls) });
    onTestFinished(async () => {
      await gateway.stop();
    });
    await storeConnected(gateway.url);
    // A fresh process's first request compiles its code paths: long enough, on a busy machine, for the
    // store's 250 ms deadline to pass first (the request is then let through). Another caller's goes first.
    await statusesOf(gateway.url, 'tls-warm-up');
    expect(await statusesOf(gateway.url, 'tls-1')).toEqual([200, 200, 429]);
  });

  it('refuses a server it cannot verify: requests go through unlimited, the log says why, never the password', async () => {
    // A process of its own too: in this one, a TLS alert after ioredis stopped listening to its socket
    // (redis/ioredis#961) can surface as an uncaught exception of the test run.
    const gateway = await spawnGateway({ JWT_SECRET_KEY: TEST_SECRET, RATE_LIMIT_PER_MINUTE: '2', REDIS_URL: redis.url, REDIS_PASSWORD: PASSWORD, LOG_FORMAT: 'json', ...upstreamEnvironment(upstreams.urls) });
    onTestFinished(async () => {
      await gateway.stop();
    });
    expect(await statusesOf(gateway.url, 'tls-2')).toEqual([200, 200, 200]);
    await eventually('the log line "Redis unavailable"', () => gateway.logLines().some((line) => String(line.msg).startsWith('Redis unavailable')));
    expect(gateway.stdout().join('\n')).not.toContain(PASSWORD);
  });
});

import { readFileSync } from 'node:fs';
import { request } from 'undici';
import { beforeEach, describe, expect, it } from 'vitest';
import { captureLog } from '../helpers/gateway.js';
import { useStack } from '../helpers/stack.js';
import { graphql } from '../helpers/graphql.js';
import { sample } from '../helpers/metrics.js';
import { eventually } from '../helpers/wait.js';
import { useRedis } from '../helpers/redis.js';
import { userToken } from '../helpers/tokens.js';

/** Every metric family of an exposition, with its type. */
function families(text: string): Map<string, string> {
  return new Map([...text.matchAll(/^# TYPE (\S+) (\S+)$/gm)].map(([, name, type]) => [name as string, type as string]));
}

describe('GET /metrics', () => {
  // A gateway of each test's own: every count below is exact.
  const fx = useStack({ env: { UPSTREAM_TIMEOUT_MS: '1000' }, perTest: true });
  let text = '';

  const scrape = async () => {
    const response = await fetch(`${fx.gateway.url}/metrics`);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    text = await response.text();
  };

  beforeEach(async () => {
    await scrape();
  });

  it('counts requests by route-table prefix, method and status, and times them', async () => {
    const token = await userToken('5');
    await fetch(`${fx.gateway.url}/users/me`, { headers: { authorization: `Bearer ${token}` } });
    await fetch(`${fx.gateway.url}/users/42/details`, { headers: { authorization: `Bearer ${token}` } });
    await fetch(`${fx.gateway.url}/users/me`);
    await fetch(`${fx.gateway.url}/no/such/path`);
    await scrape();
    expect(sample(text, 'gateway_http_requests_total', { route: '/users', method: 'GET', status: '200' })).toBe(2);
    expect(sample(text, 'gateway_http_requests_total', { route: '/users', method: 'GET', status: '401' })).toBe(1);
    expect(sample(text, 'gateway_http_requests_total', { route: 'unmatched', method: 'GET', status: '404' })).toBe(1);
    expect(text).not.toContain('route="/users/me"');
    expect(text).not.toContain('/no/such/path');
    expect(sample(text, 'gateway_http_request_duration_seconds_count', { route: '/users', method: 'GET' })).toBe(3);
    expect(sample(text, 'gateway_http_request_duration_seconds_bucket', { route: '/users', method: 'GET', le: '+Inf' })).toBe(3);
  });

  it('counts every upstream call, REST and GraphQL alike, with its outcome', async () => {
    const token = await userToken('5');
    await fetch(`${fx.gateway.url}/ondemand/movies`, { headers: { authorization: `Bearer ${token}` } });
    fx.upstreams.upstreams.rights.behaviour = (_req, res) => void res.writeHead(200, { 'content-type': 'application/json' }).end('[{"id":"basic","name":"Basic"}]');
    expect((await graphql(fx.gateway.url, '{ plans { id } }')).data).toEqual({ plans: [{ id: 'basic' }] });
    fx.upstreams.upstreams.livetv.behaviour = (_req, res) => void setTimeout(() => res.writeHead(200).end('[]'), 3000);
    const timedOut = await fetch(`${fx.gateway.url}/livetv/channels`, { headers: { authorization: `Bearer ${token}` } });
    await scrape();
    // On a failure, every upstream series and what the client got say what happened instead.
    const seen = `the client got ${timedOut.status}; upstream series:\n${text.split('\n').filter((line) => line.startsWith('gateway_upstream_requests_total{')).join('\n')}`;
    expect(timedOut.status, seen).toBe(504);
    expect(sample(text, 'gateway_upstream_requests_total', { service: 'ondemand', method: 'GET', status: '200' }), seen).toBe(1);
    expect(sample(text, 'gateway_upstream_requests_total', { service: 'rights', method: 'GET', status: '200' }), seen).toBe(1);
    expect(sample(text, 'gateway_upstream_requests_total', { service: 'livetv', method: 'GET', status: 'timeout' }), seen).toBe(1);
    expect(sample(text, 'gateway_http_requests_total', { route: '/graphql', method: 'POST', status: '200' })).toBe(1);
    expect(sample(text, 'gateway_upstream_request_duration_seconds_count', { service: 'ondemand', method: 'GET' })).toBe(1);
  });

  it('exposes the rate-limit counter and process metrics', () => {
    expect(sample(text, 'gateway_rate_limited_total')).toBe(0);
    expect(text).toContain('gateway_process_resident_memory_bytes');
    expect(text).toContain('gateway_nodejs_eventloop_lag_seconds');
  });

  it('follows Prometheus naming (counters end in _total, nothing else does) and docs/operations.md documents every metric', () => {
    const exposed = families(text);
    expect(exposed.size).toBeGreaterThan(20);
    const page = readFileSync('docs/operations.md', 'utf8');
    for (const [name, type] of exposed) {
      expect(name.endsWith('_total'), `${type} ${name}`).toBe(type === 'counter');
      expect(page, `docs/operations.md documents ${name}`).toContain(name);
    }
  });

  it('counts GraphQL operations by name, type and outcome, and their errors by code', async () => {
    const token = await userToken('5');
    const anonymousBefore = sample(text, 'gateway_graphql_operations_total', { operation: 'anonymous', type: 'query', outcome: 'success' }) ?? 0;
    fx.upstreams.upstreams.rights.behaviour = (_req, res) => void res.writeHead(200, { 'content-type': 'application/json' }).end('[{"id":"basic","name":"Basic"}]');
    fx.upstreams.upstreams.users.behaviour = (_req, res) => void res.writeHead(503).end();
    const otherBefore = (outcome: string) => sample(text, 'gateway_graphql_operations_total', { operation: 'other', type: 'query', outcome }) ?? 0;
    const [otherSuccess, otherPartial] = [otherBefore('success'), otherBefore('partial')];
    // A name earns its own series on its 20th use; until then it counts as `other`.
    for (let use = 0; use < 21; use++) await graphql(fx.gateway.url, 'query Plans { plans { id } }');
    await graphql(fx.gateway.url, '{ plans { id } }');
    await graphql(fx.gateway.url, 'query Both { plans { id } me { id } }', { token });
    await graphql(fx.gateway.url, 'mutation Nope { nosuchfield }');
    await graphql(fx.gateway.url, 'query Me { me { id } }');
    await scrape();
    const operations = (labels: Record<string, string>) => sample(text, 'gateway_graphql_operations_total', labels);
    expect(operations({ operation: 'Plans', type: 'query', outcome: 'success' })).toBe(2);
    expect(operations({ operation: 'other', type: 'query', outcome: 'success' })).toBe(otherSuccess + 19);
    expect(operations({ operation: 'anonymous', type: 'query', outcome: 'success' })).toBe(anonymousBefore + 1);
    // Both and Me, once each: `other`, with their outcomes.
    expect(operations({ operation: 'other', type: 'query', outcome: 'partial' })).toBe(otherPartial + 2);
    expect(operations({ operation: 'invalid', type: 'unknown', outcome: 'error' })).toBe(1);
    expect(sample(text, 'gateway_graphql_errors_total', { code: 'UPSTREAM_UNAVAILABLE' })).toBe(1);
    expect(sample(text, 'gateway_graphql_errors_total', { code: 'GRAPHQL_VALIDATION_FAILED' })).toBe(1);
    expect(sample(text, 'gateway_graphql_errors_total', { code: 'UNAUTHENTICATED' })).toBe(1);
  });

  it('keeps client-chosen operation names from growing the series without bound', async () => {
    fx.upstreams.upstreams.rights.behaviour = (_req, res) => void res.writeHead(200, { 'content-type': 'application/json' }).end('[]');
    for (let i = 0; i < 110; i++) await graphql(fx.gateway.url, `query Op${i}${'x'.repeat(80)} { plans { id } }`);
    for (let use = 0; use < 20; use++) await graphql(fx.gateway.url, `query Long${'x'.repeat(80)} { plans { id } }`);
    await scrape();
    const names = new Set([...text.matchAll(/^gateway_graphql_operations_total\{[^}]*operation="([^"]*)"/gm)].map(([, name]) => name));
    expect([...names].filter((name) => name?.startsWith('Op'))).toEqual([]);
    expect(names).toContain('other');
    expect(names).toContain(`Long${'x'.repeat(60)}`);
    for (const name of names) expect((name ?? '').length).toBeLessThanOrEqual(64);
  });

  it('counts a request whose client left before any answer as 499', async () => {
    fx.upstreams.upstreams.ondemand.behaviour = () => undefined;
    const abort = new AbortController();
    const sent = request(`${fx.gateway.url}/ondemand/movies`, { headers: { authorization: `Bearer ${await userToken('5')}` }, signal: abort.signal });
    await eventually('the request at the upstream', () => fx.upstreams.upstreams.ondemand.requests.length > 0);
    abort.abort();
    await expect(sent).rejects.toThrow();
    await eventually('/metrics to count the request as 499', async () => {
      await scrape();
      return sample(text, 'gateway_http_requests_total', { route: '/ondemand', method: 'GET', status: '499' }) === 1;
    });
    expect(sample(text, 'gateway_upstream_requests_total', { service: 'ondemand', method: 'GET', status: 'aborted' })).toBe(1);
  });
});

describe('the rate limit store (a real Redis that goes away)', () => {
  const log = captureLog('info');
  const redis = useRedis();
  const fx = useStack({ env: () => ({ REDIS_URL: redis.url, RATE_LIMIT_PER_MINUTE: '1000' }), logger: log.logger });

  const metricsText = async () => (await fetch(`${fx.gateway.url}/metrics`)).text();

  it('says whether the store answers, counts its failures, and logs the outage once', async () => {
    const token = await userToken('7');
    const call = async () => {
      const response = await request(`${fx.gateway.url}/ondemand/movies`, { headers: { authorization: `Bearer ${token}` } });
      await response.body.text();
      return { status: response.statusCode, limited: response.headers['ratelimit-remaining'] !== '1000' };
    };
    // Connected: a request takes a token from Redis.
    let text = await eventually('the limiter store to say it is connected', async () => {
      expect((await call()).status).toBe(200);
      const scraped = await metricsText();
      return sample(scraped, 'gateway_rate_limit_store_up', { limiter: 'requests' }) === 1 && scraped;
    });
    const failedBefore = sample(text, 'gateway_rate_limit_store_errors_total', { limiter: 'requests' }) ?? -1;
    expect(failedBefore).toBeGreaterThanOrEqual(0);
    expect(await call()).toEqual({ status: 200, limited: true });

    await redis.stop();
    for (let i = 0; i < 5; i++) expect(await call()).toEqual({ status: 200, limited: false });
    text = await metricsText();
    expect(sample(text, 'gateway_rate_limit_store_up', { limiter: 'requests' })).toBe(0);
    expect(sample(text, 'gateway_rate_limit_store_errors_total', { limiter: 'requests' })).toBe(failedBefore + 5);
    const outages = log.lines.filter((line) => typeof line.msg === 'string' && line.msg.startsWith('Redis unavailable'));
    expect(outages).toHaveLength(1);
  });
});

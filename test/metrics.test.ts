import { beforeEach, describe, expect, it } from 'vitest';
import { useRecordingGateway } from './helpers/fixtures.js';
import { graphql } from './helpers/graphql.js';
import { sample } from './helpers/metrics.js';
import { userToken } from './helpers/tokens.js';

describe('GET /metrics', () => {
  const fx = useRecordingGateway({ UPSTREAM_TIMEOUT_MS: '300' });
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
    const before = sample(text, 'gateway_http_requests_total', { route: '/users', method: 'GET', status: '200' }) ?? 0;
    const token = await userToken('5');
    await fetch(`${fx.gateway.url}/users/me`, { headers: { authorization: `Bearer ${token}` } });
    await fetch(`${fx.gateway.url}/users/42/details`, { headers: { authorization: `Bearer ${token}` } });
    await fetch(`${fx.gateway.url}/users/me`);
    await fetch(`${fx.gateway.url}/no/such/path`);
    await scrape();
    expect(sample(text, 'gateway_http_requests_total', { route: '/users', method: 'GET', status: '200' })).toBe(before + 2);
    expect(sample(text, 'gateway_http_requests_total', { route: '/users', method: 'GET', status: '401' })).toBe(1);
    expect(sample(text, 'gateway_http_requests_total', { route: 'unmatched', method: 'GET', status: '404' })).toBe(1);
    expect(text).not.toContain('route="/users/me"');
    expect(text).not.toContain('/no/such/path');
    expect(sample(text, 'gateway_http_request_duration_seconds_count', { route: '/users', method: 'GET' })).toBeGreaterThanOrEqual(3);
    expect(sample(text, 'gateway_http_request_duration_seconds_bucket', { route: '/users', method: 'GET', le: '+Inf' })).toBeGreaterThanOrEqual(3);
  });

  it('counts every upstream call, REST and GraphQL alike, with its outcome', async () => {
    const token = await userToken('5');
    await fetch(`${fx.gateway.url}/ondemand/movies`, { headers: { authorization: `Bearer ${token}` } });
    fx.upstreams.upstreams.rights.behaviour = (_req, res) => void res.writeHead(200, { 'content-type': 'application/json' }).end('[{"id":"basic","name":"Basic"}]');
    expect((await graphql(fx.gateway.url, '{ plans { id } }')).data).toEqual({ plans: [{ id: 'basic' }] });
    fx.upstreams.upstreams.livetv.behaviour = (_req, res) => void setTimeout(() => res.writeHead(200).end('[]'), 1000);
    await fetch(`${fx.gateway.url}/livetv/channels`, { headers: { authorization: `Bearer ${token}` } });
    await scrape();
    expect(sample(text, 'gateway_upstream_requests_total', { service: 'ondemand', method: 'GET', status: '200' })).toBe(1);
    expect(sample(text, 'gateway_upstream_requests_total', { service: 'rights', method: 'GET', status: '200' })).toBe(1);
    expect(sample(text, 'gateway_upstream_requests_total', { service: 'livetv', method: 'GET', status: 'timeout' })).toBe(1);
    expect(sample(text, 'gateway_http_requests_total', { route: '/graphql', method: 'POST', status: '200' })).toBe(1);
    expect(sample(text, 'gateway_upstream_request_duration_seconds_count', { service: 'ondemand', method: 'GET' })).toBe(1);
  });

  it('exposes the rate-limit counter and process metrics', () => {
    expect(sample(text, 'gateway_rate_limited_total')).toBe(0);
    expect(text).toContain('gateway_process_resident_memory_bytes');
    expect(text).toContain('gateway_nodejs_eventloop_lag_seconds');
  });
});

/**
 * One set of identity and forwarding headers, from one function, on both faces: the same caller makes
 * the same call over REST and over GraphQL, and the upstream sees the same headers.
 */
import type { IncomingHttpHeaders } from 'node:http';
import { beforeAll, describe, expect, it } from 'vitest';
import type { UpstreamName } from '../../shared/upstreams.js';
import { useStack } from '../helpers/stack.js';
import { startGateway } from '../helpers/gateway.js';
import { graphql } from '../helpers/graphql.js';
import { signToken, TEST_SECRET } from '../helpers/tokens.js';

const fx = useStack({});

/** Headers a client may try to set itself: none of them may reach an upstream as sent. */
const SPOOFED = {
  'x-user-id': '1',
  'x-user-roles': 'admin',
  'x-forwarded-for': '6.6.6.6',
  'x-forwarded-proto': 'https',
  'x-forwarded-host': 'evil.example',
  forwarded: 'for=6.6.6.6',
};

const OWNED = ['authorization', 'x-user-id', 'x-user-roles', 'x-request-id', 'x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host', 'forwarded'] as const;

const owned = (headers: IncomingHttpHeaders | undefined) => Object.fromEntries(OWNED.map((name) => [name, headers?.[name]]));

interface Case {
  readonly name: string;
  readonly upstream: UpstreamName;
  readonly rest: string;
  readonly query: string;
  readonly answer: unknown;
  readonly token?: () => Promise<string>;
}

const cases: Case[] = [
  { name: 'a user', upstream: 'users', rest: '/users/me', query: '{ me { id } }', answer: { id: '42', username: 'u', roles: ['user'] }, token: () => signToken({ sub: '42', roles: ['user', 'editor'] }) },
  { name: 'an admin', upstream: 'users', rest: '/admin/users?limit=1', query: '{ adminUsers(limit: 1) { id } }', answer: [], token: () => signToken({ sub: '7', roles: ['user', 'admin'] }) },
  { name: 'anyone', upstream: 'search', rest: '/search/global?q=news', query: '{ search(q: "news") { total } }', answer: { items: [], total: 0 } },
];

describe('the headers an upstream receives', () => {
  let tokens: (string | undefined)[];

  beforeAll(async () => {
    tokens = await Promise.all(cases.map((testCase) => testCase.token?.() ?? Promise.resolve(undefined)));
  });

  it.each(cases.map((testCase, index) => [testCase.name, index] as const))('are the same from REST and GraphQL for %s, whatever the client claims', async (_, index) => {
    const testCase = cases[index] as Case;
    const token = tokens[index];
    fx.upstreams.upstreams[testCase.upstream].behaviour = (_req, res) => void res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(testCase.answer));
    const headers = { ...SPOOFED, 'x-request-id': `same-${index}`, ...(token ? { authorization: `Bearer ${token}` } : {}) };

    const rest = await fetch(`${fx.gateway.url}${testCase.rest}`, { headers });
    expect(rest.status).toBe(200);
    const answer = await graphql(fx.gateway.url, testCase.query, { headers });
    expect(answer.errors).toBeUndefined();

    const [fromRest, fromGraphQL] = fx.upstreams.upstreams[testCase.upstream].requests.map((request) => owned(request.headers));
    expect(fromGraphQL).toEqual(fromRest);
    expect(fromRest).toEqual({
      authorization: token ? `Bearer ${token}` : undefined,
      'x-user-id': token ? expect.stringMatching(/^(42|7)$/) : undefined,
      'x-user-roles': token ? expect.stringMatching(/^user,(editor|admin)$/) : undefined,
      'x-request-id': `same-${index}`,
      'x-forwarded-for': '127.0.0.1',
      'x-forwarded-proto': 'http',
      'x-forwarded-host': new URL(fx.gateway.url).host,
      forwarded: undefined,
    });
    expect(fx.upstreams.all()).toHaveLength(2);
  });

  it('trust TRUST_PROXY_HOPS proxies alike on both faces', async () => {
    const behindProxy = await startGateway(fx.upstreams.urls, { JWT_SECRET_KEY: TEST_SECRET, TRUST_PROXY_HOPS: '1' });
    try {
      fx.upstreams.upstreams.search.behaviour = (_req, res) => void res.writeHead(200, { 'content-type': 'application/json' }).end('{"items":[],"total":0}');
      const headers = { 'x-forwarded-for': '6.6.6.6, 203.0.113.9', 'x-forwarded-proto': 'https', 'x-forwarded-host': 'tv.example', 'x-request-id': 'proxied' };
      await fetch(`${behindProxy.url}/search/global?q=a`, { headers });
      await graphql(behindProxy.url, '{ search(q: "a") { total } }', { headers });
      const seen = fx.upstreams.upstreams.search.requests.map((request) => owned(request.headers));
      expect(seen).toHaveLength(2);
      for (const headersSeen of seen) {
        expect(headersSeen).toMatchObject({ 'x-forwarded-for': '203.0.113.9, 127.0.0.1', 'x-forwarded-proto': 'https', 'x-forwarded-host': 'tv.example', 'x-request-id': 'proxied' });
      }
    } finally {
      await behindProxy.close();
    }
  });
});

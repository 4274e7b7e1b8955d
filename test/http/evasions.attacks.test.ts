/**
 * Issue 19's fixes attacked from their inputs, a second round: abandoning a password check, holding
 * metric series by volume, CDN headers, fragments around the one-login rule. Each `it` was a finding
 * before its fix.
 */
import type { ServerResponse } from 'node:http';
import { describe, expect, it, onTestFinished, vi } from 'vitest';
import { sample } from '../helpers/metrics.js';
import type { RecordingUpstream } from '../helpers/recording-upstream.js';
import { useStack } from '../helpers/stack.js';
import { userToken } from '../helpers/tokens.js';

/** Bounded waits: generous (the machine is busy), and they say what they waited for. */
const WAIT = { timeout: 20_000, interval: 10 };

const postJson = (url: string, body: unknown, signal?: AbortSignal) =>
  fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body), ...(signal ? { signal } : {}) });

/** The upstream keeps every request it gets (a password being hashed) until the test answers it. */
function holding(upstream: RecordingUpstream): ServerResponse[] {
  const held: ServerResponse[] = [];
  upstream.behaviour = (_req, res) => void held.push(res);
  onTestFinished(() => {
    for (const res of held) if (!res.destroyed) res.writeHead(401, { 'content-type': 'application/json' }).end('{"detail":"Incorrect username or password"}');
  });
  return held;
}

const LOGIN = 'mutation ($u: String!, $p: String!) { login(username: $u, password: $p) { access_token } }';

describe('CREDENTIAL_CALLS_PER_CLIENT when the client walks away', () => {
  const fx = useStack({ env: { CREDENTIAL_CALLS_PER_CLIENT: '2', RATE_LIMIT_PER_MINUTE: '600' } });

  it('a login the client abandons once it reached the authentication service keeps its place until the service answers: a third one is refused, REST and GraphQL', async () => {
    const auth = fx.upstreams.upstreams.auth;
    holding(auth);
    const outcomes: string[] = [];
    for (let i = 0; i < 6; i++) {
      const face = i % 2 === 0 ? 'rest' : 'graphql';
      const leaving = new AbortController();
      const before = auth.requests.length;
      let answered: string | undefined;
      const guess = { username: 'alice', password: `guess-${i}` };
      const sent = face === 'rest' ? postJson(`${fx.gateway.url}/auth/login`, guess, leaving.signal) : postJson(`${fx.gateway.url}/graphql`, { query: LOGIN, variables: { u: guess.username, p: guess.password } }, leaving.signal);
      const answer = sent.then(
        async (response) => (answered = `${response.status} ${JSON.stringify(await response.json()).includes('RATE_LIMITED') ? 'RATE_LIMITED' : ''}`),
        () => undefined,
      );
      // The guess reached the service (its hash has started), or the gateway answered.
      await vi.waitFor(() => expect(auth.requests.length > before || answered !== undefined, `guess ${i} reached the service or was answered`).toBe(true), WAIT);
      leaving.abort();
      await answer;
      outcomes.push(`${face} ${answered ?? 'reached the service, then abandoned'}`);
    }
    // The service is still hashing the abandoned guesses: the gateway must not start more than 2 at once.
    expect(auth.requests.length, outcomes.join('; ')).toBeLessThanOrEqual(2);
    expect(outcomes.slice(2)).toEqual(['rest 429 RATE_LIMITED', 'graphql 200 RATE_LIMITED', 'rest 429 RATE_LIMITED', 'graphql 200 RATE_LIMITED']);
  });
});

describe('operation-name metric series (gateway_graphql_operations_total)', () => {
  const fx = useStack({});

  it('an app operation in current use gets its series even after one client used 100 made-up names 20 times each', async () => {
    const query = (text: string) => postJson(`${fx.gateway.url}/graphql`, { query: text }).then((response) => response.text());
    for (let name = 0; name < 100; name++) await Promise.all(Array.from({ length: 20 }, () => query(`query Junk${name} { __typename }`)));
    for (let use = 0; use < 40; use++) await query('query HomeScreen { __typename }');
    const metrics = await (await fetch(`${fx.gateway.url}/metrics`)).text();
    expect(sample(metrics, 'gateway_graphql_operations_total', { operation: 'HomeScreen', type: 'query', outcome: 'success' }) ?? 0, 'HomeScreen’s own series').toBeGreaterThan(0);
  }, 120_000);
});

describe('authenticated REST answers stay private for every cache in front', () => {
  const fx = useStack({});

  it('drops (or makes private) the CDN-targeted cache headers an upstream sets on an answer made for one caller', async () => {
    const cdnHeaders = { 'cdn-cache-control': 'public, max-age=600', 'surrogate-control': 'max-age=600', 'cloudflare-cdn-cache-control': 'public, max-age=600' };
    fx.upstreams.upstreams.users.behaviour = (_req, res) =>
      void res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'public, max-age=600', ...cdnHeaders }).end('{"id":"1","username":"alice","email":"alice@example.com","roles":["user"]}');
    const response = await fetch(`${fx.gateway.url}/users/me`, { headers: { authorization: `Bearer ${await userToken('1')}` } });
    expect(response.status).toBe(200);
    expect(response.headers.get('cache-control')).toMatch(/^private\b/);
    // RFC 9213: a CDN obeys CDN-Cache-Control (and Fastly/Akamai Surrogate-Control) over Cache-Control.
    for (const name of Object.keys(cdnHeaders)) {
      const value = response.headers.get(name);
      expect(value === null || /private|no-store/.test(value), `${name}: ${value}`).toBe(true);
    }
  });
});

describe('at most one login or register per request, however the document is written', () => {
  const fx = useStack({ env: { CREDENTIAL_CALLS_PER_CLIENT: '2' } });

  it.each([
    ['inline fragments', 'mutation { ... on Mutation { a: login(username: "m", password: "p1") { access_token } } ... on Mutation { b: login(username: "m", password: "p2") { access_token } } }'],
    ['named fragments', 'mutation { ...A ...B } fragment A on Mutation { a: login(username: "m", password: "p1") { access_token } } fragment B on Mutation { b: login(username: "m", password: "p2") { access_token } }'],
    ['a login and a register', 'mutation { ... on Mutation { a: login(username: "m", password: "p1") { access_token } } b: register(username: "n", password: "password2", email: "n@example.com") { id } }'],
  ])('%s: 400 GRAPHQL_VALIDATION_FAILED, nothing reaches the authentication service', async (_name, query) => {
    fx.upstreams.upstreams.auth.behaviour = (_req, res) => void res.writeHead(200, { 'content-type': 'application/json' }).end('{"access_token":"t","token_type":"bearer","expires_in":900,"refresh_token":"r","id":"9","username":"n","email":"n@example.com","roles":["user"]}');
    const response = await postJson(`${fx.gateway.url}/graphql`, { query });
    const body = (await response.json()) as { errors?: { extensions: { code: string } }[] };
    expect({ status: response.status, code: body.errors?.[0]?.extensions.code }).toEqual({ status: 400, code: 'GRAPHQL_VALIDATION_FAILED' });
    expect(fx.upstreams.upstreams.auth.requests).toHaveLength(0);
  });
});

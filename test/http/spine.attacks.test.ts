/**
 * The red-team findings against the GraphQL face's upstream calls, tried again from the attacker's
 * side on both faces, asserting what the upstreams saw (or that nothing reached them).
 */
import type { ServerResponse } from 'node:http';
import { beforeAll, describe, expect, it } from 'vitest';
import { useStack } from '../helpers/stack.js';
import { captureLog } from '../helpers/gateway.js';
import { expectOnlyErrorHiding, graphql, onlyError } from '../helpers/graphql.js';
import { upstreamCalls, upstreamCallsSince } from '../helpers/metrics.js';
import { rawGet } from '../helpers/raw-http.js';
import { RecordingUpstream } from '../helpers/recording-upstream.js';
import { signToken, userToken } from '../helpers/tokens.js';
import { within } from '../helpers/wait.js';

const log = captureLog('warn');
// UPSTREAM_TIMEOUT_MS: a second, which a busy machine's ordinary calls stay well within; the late upstreams are later still.
const fx = useStack({ env: { UPSTREAM_TIMEOUT_MS: '1000' }, logger: log.logger });
let bob: string;

beforeAll(async () => {
  bob = await signToken({ sub: '2', roles: ['user'] });
});

const json = (res: ServerResponse, body: unknown, status = 200) => void res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
const playback = { url: 'https://cdn.tv.example/vod/m1/x', expiresAt: '2030-01-01T00:00:00Z' };

describe('a GraphQL argument never steers an upstream path', () => {
  it.each([
    ['../../admin/ondemand/movies/m1', '/play/ondemand/../../admin/ondemand/movies/m1', 403],
    ['../../health', '/play/ondemand/../../health', 404],
    ['m2/../m1', undefined, undefined],
    ['m1%2F..%2F..%2Fhealth', '/play/ondemand/m1%2F..%2F..%2Fhealth', 400],
    ['..', '/play/ondemand/..', 404],
    ['', undefined, undefined],
    ['m1;admin=1', '/play/ondemand/m1;admin=1', 400],
    ['a\\b', '/play/ondemand/a\\b', 400],
  ])('playMovie(id: %j) is BAD_USER_INPUT with no upstream call; REST refuses its twin', async (id, restTarget, restStatus) => {
    const answer = await graphql(fx.gateway.url, 'query ($id: ID!) { playMovie(id: $id) { url } }', { token: bob, variables: { id } });
    // An empty id is refused by the spec's own limit first (minLength), the others by the path rule.
    const why = id === '' ? 'must be at least 1 character long' : 'must not be empty, "." or "..", nor hold / \\ % ; or NUL';
    expect(onlyError(answer)).toEqual({ code: 'BAD_USER_INPUT', message: `Invalid value for argument "id": ${why}`, path: ['playMovie'] });
    if (restTarget) expect((await rawGet(fx.gateway.url, restTarget, { authorization: `Bearer ${bob}` })).status).toBe(restStatus);
    expect(fx.upstreams.all()).toEqual([]);
  });

  it.each([
    ['m1?x=1', '/play/ondemand/m1%3Fx%3D1'],
    ['m1#frag', '/play/ondemand/m1%23frag'],
    ['film é', '/play/ondemand/film%20%C3%A9'],
  ])('playMovie(id: %j) reaches only its own operation, the id one encoded segment: %s', async (id, seen) => {
    fx.upstreams.upstreams.ondemand.behaviour = (_req, res) => json(res, playback);
    const answer = await graphql(fx.gateway.url, 'query ($id: ID!) { playMovie(id: $id) { url } }', { token: bob, variables: { id } });
    expect(answer.errors).toBeUndefined();
    expect(fx.upstreams.all().map((request) => request.url)).toEqual([seen]);
  });

  it('encodes ids of the admin mutations the same way, and refuses the same values', async () => {
    const admin = await signToken({ sub: '3', roles: ['user', 'admin'] });
    fx.upstreams.upstreams.users.behaviour = (_req, res) => json(res, { id: '2', username: 'bob', roles: ['user'] });
    await graphql(fx.gateway.url, 'mutation { adminSetUserRoles(id: "2 x", roles: ["user"]) { id } }', { token: admin });
    expect(fx.upstreams.all().map((request) => `${request.method} ${request.url}`)).toEqual(['PUT /admin/users/2%20x/roles']);
    const refused = await graphql(fx.gateway.url, 'mutation { adminSetUserRoles(id: "../../../internal/users/2", roles: ["admin"]) { id } }', { token: admin });
    expect(onlyError(refused).code).toBe('BAD_USER_INPUT');
    expect(fx.upstreams.all()).toHaveLength(1);
  });
});

describe('an upstream redirect never sends the gateway to another host', () => {
  it('is UPSTREAM_UNAVAILABLE on GraphQL and relayed untouched on REST, the other host contacted by neither', async () => {
    const redirects = await upstreamCallsSince(fx.gateway.url, 'rights', 'GET', '302');
    const elsewhere = await RecordingUpstream.start('metadata');
    try {
      const location = `${elsewhere.url}/latest/meta-data/iam/security-credentials/`;
      fx.upstreams.upstreams.rights.behaviour = (_req, res) => void res.writeHead(302, { location }).end();
      const answer = await graphql(fx.gateway.url, '{ plans { id } }', { token: bob, headers: { 'x-request-id': 'ssrf-1' } });
      expect(onlyError(answer)).toMatchObject({ code: 'UPSTREAM_UNAVAILABLE', message: 'The rights management service answered with a redirect, which the gateway does not follow' });
      expect(answer.text).not.toContain('meta-data');

      const rest = await fetch(`${fx.gateway.url}/subscriptions/plans`, { headers: { authorization: `Bearer ${bob}` }, redirect: 'manual' });
      expect(rest.status).toBe(302);
      expect(rest.headers.get('location')).toBe(location);
      expect(elsewhere.requests).toEqual([]);
      expect(fx.upstreams.upstreams.rights.requests).toHaveLength(2);
      expect(await redirects()).toBe(2);
    } finally {
      await elsewhere.close();
    }
  });
});

/** Answers `total` bytes of JSON whitespace (with or without a Content-Length), counting what it managed to write. */
function flood(total: number, declared: boolean, written: { bytes: number }) {
  return (_req: unknown, res: ServerResponse) => {
    res.writeHead(200, { 'content-type': 'application/json', ...(declared ? { 'content-length': String(total) } : {}) });
    const chunk = Buffer.alloc(64 * 1024, 0x20);
    const pump = () => {
      while (written.bytes < total && !res.destroyed) {
        written.bytes += chunk.length;
        if (!res.write(chunk)) {
          res.once('drain', pump);
          return;
        }
      }
      if (!res.destroyed) res.end();
    };
    pump();
  };
}

describe('an upstream answer never makes the gateway hold more than UPSTREAM_RESPONSE_LIMIT_BYTES', () => {
  const MB = 1024 * 1024;
  // Its own gateway, with time enough: a busy machine must see the size limit here, not the timeout.
  const fx = useStack({ env: { UPSTREAM_TIMEOUT_MS: '60000' } });

  it('fails four 300 MB GraphQL answers at once as UPSTREAM_UNAVAILABLE, reading about 10 MiB of each', async () => {
    const written = { bytes: 0 };
    fx.upstreams.upstreams.rights.behaviour = flood(300 * MB, false, written);
    // Four callers (identical calls of one caller would be coalesced into one).
    const tokens = await Promise.all([1, 2, 3, 4].map((sub) => userToken(String(sub))));
    const tooLarge = await upstreamCallsSince(fx.gateway.url, 'rights', 'GET', 'too_large');
    const rssBefore = process.memoryUsage().rss;
    const answers = await Promise.all(tokens.map((token) => graphql(fx.gateway.url, '{ plans { id } }', { token })));
    const rssGrowth = process.memoryUsage().rss - rssBefore;
    for (const answer of answers) expect(onlyError(answer)).toMatchObject({ code: 'UPSTREAM_UNAVAILABLE', message: "The rights management service sent an answer over the gateway's size limit" });
    expect(written.bytes).toBeLessThan(4 * 32 * MB);
    expect(rssGrowth).toBeLessThan(200 * MB);
    expect(await tooLarge()).toBe(4);
  });

  it('refuses a declared 300 MB answer before reading its body', async () => {
    const written = { bytes: 0 };
    fx.upstreams.upstreams.rights.behaviour = flood(300 * MB, true, written);
    expect(onlyError(await graphql(fx.gateway.url, '{ plans { id } }')).code).toBe('UPSTREAM_UNAVAILABLE');
    expect(written.bytes).toBeLessThan(32 * MB);
  });

  it('streams the same answer on REST, without holding it', async () => {
    const written = { bytes: 0 };
    fx.upstreams.upstreams.rights.behaviour = flood(30 * MB, true, written);
    const response = await fetch(`${fx.gateway.url}/subscriptions/plans`, { headers: { authorization: `Bearer ${bob}` } });
    expect(response.status).toBe(200);
    let received = 0;
    const read = async () => {
      for await (const chunk of response.body as AsyncIterable<Uint8Array>) received += chunk.length;
    };
    await within(() => `the 30 MB answer read to its end (${received} bytes so far)`, read());
    expect(received).toBe(30 * MB);
  });
});

describe('an upstream answer that breaks is read as the failure it is', () => {
  it('truncated: UPSTREAM_UNAVAILABLE on GraphQL, counted as truncated', async () => {
    const truncated = await upstreamCallsSince(fx.gateway.url, 'rights', 'GET', 'truncated');
    fx.upstreams.upstreams.rights.behaviour = (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': '1000' });
      res.write('[{"id":"basic"', () => res.socket?.end());
    };
    expect(onlyError(await graphql(fx.gateway.url, '{ plans { id } }'))).toMatchObject({ code: 'UPSTREAM_UNAVAILABLE', message: 'The rights management service sent an incomplete answer' });
    expect(await truncated()).toBe(1);
  });

  it('slow body: UPSTREAM_TIMEOUT on GraphQL, counted as a timeout', async () => {
    const timeouts = await upstreamCallsSince(fx.gateway.url, 'rights', 'GET', 'timeout');
    fx.upstreams.upstreams.rights.behaviour = (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.write('[{"id":"basic",');
    };
    expect(onlyError(await graphql(fx.gateway.url, '{ plans { id } }'))).toMatchObject({ code: 'UPSTREAM_TIMEOUT', message: 'The rights management service did not answer in time' });
    expect(await timeouts()).toBe(1);
  });

  it('trickled body: UPSTREAM_TIMEOUT once the whole answer is late, however steady the trickle', async () => {
    fx.upstreams.upstreams.rights.behaviour = (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      const timer = setInterval(() => res.write(' '), 100);
      res.on('close', () => clearInterval(timer));
    };
    expect(onlyError(await graphql(fx.gateway.url, '{ plans { id } }')).code).toBe('UPSTREAM_TIMEOUT');
  });

  it('on REST, a body that breaks off or stalls after the headers cuts the client’s response short, counted as such', async () => {
    const read = async (path: string) => {
      const response = await fetch(`${fx.gateway.url}${path}`, { headers: { authorization: `Bearer ${bob}` } });
      expect(response.status).toBe(200);
      return response.text().then(
        () => 'complete',
        () => 'cut short',
      );
    };
    const counted = async () => [await upstreamCalls(fx.gateway.url, 'rights', 'GET', 'truncated'), await upstreamCalls(fx.gateway.url, 'rights', 'GET', 'timeout')];
    const [truncated = 0, timedOut = 0] = await counted();
    fx.upstreams.upstreams.rights.behaviour = (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': '1000' });
      res.write('[{"id":"basic"', () => res.socket?.end());
    };
    expect(await read('/subscriptions/plans')).toBe('cut short');
    expect(await counted()).toEqual([truncated + 1, timedOut]);
    fx.upstreams.upstreams.rights.behaviour = (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': '1000' });
      res.write('[{"id":"basic",');
    };
    expect(await read('/subscriptions/plans')).toBe('cut short');
    expect(await counted()).toEqual([truncated + 1, timedOut + 1]);
  });

  it('invalid JSON: UPSTREAM_UNAVAILABLE, never the body', async () => {
    fx.upstreams.upstreams.rights.behaviour = (_req, res) => void res.writeHead(200, { 'content-type': 'application/json' }).end('{"dsn": "postgres://db01.internal/x", ');
    expectOnlyErrorHiding(await graphql(fx.gateway.url, '{ plans { id } }'), { code: 'UPSTREAM_UNAVAILABLE', message: 'The rights management service sent an answer that is not valid JSON' }, 'db01');
  });

  it('an upstream 4xx detail holding internals: the status phrase on both faces, the full text in the log with the request id', async () => {
    const detail = 'could not connect to postgres://app:pw@db01.internal:5432/catalog (see /srv/app/db.py)';
    fx.upstreams.upstreams.rights.behaviour = (_req, res) => json(res, { detail }, 409);
    const answer = await graphql(fx.gateway.url, 'mutation { subscribe(planId: "basic") { planId } }', { token: bob, headers: { 'x-request-id': 'leak-gql' } });
    expect(onlyError(answer)).toEqual({ code: 'BAD_USER_INPUT', message: 'Conflict', path: ['subscribe'] });
    const rest = await fetch(`${fx.gateway.url}/subscriptions`, { method: 'POST', headers: { authorization: `Bearer ${bob}`, 'x-request-id': 'leak-rest' } });
    expect(rest.status).toBe(409);
    expect(await rest.json()).toMatchObject({ detail: 'Conflict', code: 'BAD_USER_INPUT' });
    for (const requestId of ['leak-gql', 'leak-rest']) {
      expect(log.lines.find((line) => line.requestId === requestId)).toMatchObject({ upstream: 'rights', status: 409, upstreamBody: JSON.stringify({ detail }) });
    }
    expect(answer.text).not.toMatch(/db01|postgres|db\.py/);
  });
});

/**
 * Shared calls judged once (issue 19): a coalesced call is one call for the breaker and survives its
 * first caller leaving; the shared cache never hands one caller's answer to another; authenticated REST
 * answers go out `private`; a 204 never announces a body. Tried from the attacker's side on both faces,
 * asserting what the upstreams received and what the other clients got meanwhile.
 */
import { connect, type Socket } from 'node:net';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { beforeAll, describe, expect, it, onTestFinished, vi } from 'vitest';
import { ROUTES } from '../../gateway/src/routing/routes.js';
import type { UpstreamName } from '../../shared/upstreams.js';
import { captureLog } from '../helpers/gateway.js';
import { graphql } from '../helpers/graphql.js';
import { sample, upstreamCallsSince } from '../helpers/metrics.js';
import type { RecordingUpstream } from '../helpers/recording-upstream.js';
import { useStack } from '../helpers/stack.js';
import { adminToken, userToken } from '../helpers/tokens.js';
import { eventually, WAIT } from '../helpers/wait.js';

type Face = 'rest' | 'graphql';
const FACES: readonly Face[] = ['rest', 'graphql'];

/** Bounded waits: generous (the machine is busy), and they say what they waited for. */
const json = (res: ServerResponse, body: unknown, headers: Record<string, string> = {}, status = 200) =>
  void res.writeHead(status, { 'content-type': 'application/json', ...headers }).end(JSON.stringify(body));

/** A promise awaited later in the test: if the test fails first, its rejection is not left unhandled. */
function later<T>(promise: Promise<T>): Promise<T> {
  promise.catch(() => undefined);
  return promise;
}

/** The upstream keeps every request it gets until the test answers it. */
function holding(upstream: RecordingUpstream): ServerResponse[] {
  const held: ServerResponse[] = [];
  upstream.behaviour = (_req, res) => void held.push(res);
  return held;
}

async function metric(baseUrl: string, name: string, labels: Record<string, string>): Promise<number> {
  return sample(await (await fetch(`${baseUrl}/metrics`)).text(), name, labels) ?? 0;
}

/** How many calls to `service` have joined an identical one in flight since now. */
async function joinsSince(baseUrl: string, service: UpstreamName): Promise<() => Promise<number>> {
  const before = await metric(baseUrl, 'gateway_upstream_coalesced_total', { service });
  return async () => (await metric(baseUrl, 'gateway_upstream_coalesced_total', { service })) - before;
}

interface SearchAnswer {
  readonly status: number;
  /** The catalogue code of the error (REST problem, or the GraphQL field's error). */
  readonly code?: string;
  readonly total?: number;
}

/** A global search `q`, as a REST client or a GraphQL client asks it. */
async function search(baseUrl: string, face: Face, q: string, options: { requestId?: string; signal?: AbortSignal } = {}): Promise<SearchAnswer> {
  const headers: Record<string, string> = options.requestId ? { 'x-request-id': options.requestId } : {};
  if (face === 'rest') {
    const response = await fetch(`${baseUrl}/search/global?q=${q}`, { headers, ...(options.signal ? { signal: options.signal } : {}) });
    const body = (await response.json()) as { code?: string; total?: number };
    return { status: response.status, ...(body.code ? { code: body.code } : {}), ...(body.total !== undefined ? { total: body.total } : {}) };
  }
  const response = await fetch(`${baseUrl}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify({ query: 'query ($q: String!) { search(q: $q) { total } }', variables: { q } }),
    ...(options.signal ? { signal: options.signal } : {}),
  });
  const body = (await response.json()) as { data?: { search: { total: number } | null }; errors?: { extensions: { code: string } }[] };
  const code = body.errors?.[0]?.extensions.code;
  const total = body.data?.search?.total;
  return { status: response.status, ...(code ? { code } : {}), ...(total !== undefined ? { total } : {}) };
}

const found = (total: number): SearchAnswer => ({ status: 200, total });

describe('a coalesced call is one call for the circuit breaker', () => {
  const fx = useStack({ env: { UPSTREAM_BREAKER_FAILURES: '2', UPSTREAM_BREAKER_OPEN_MS: '600000' } });
  const circuit = () => metric(fx.gateway.url, 'gateway_upstream_circuit_state', { service: 'search' });

  it.each(FACES)('%s: six identical searches answered by one 503 count once; the next searches on both faces reach the upstream', async (face) => {
    const upstream = fx.upstreams.upstreams.search;
    const held = holding(upstream);
    const joins = await joinsSince(fx.gateway.url, 'search');
    const answers = later(Promise.all(Array.from({ length: 6 }, () => search(fx.gateway.url, face, `breaker-${face}`))));
    await vi.waitFor(async () => {
      expect(held, 'the first search at the upstream').toHaveLength(1);
      expect(await joins(), 'five searches joined it').toBe(5);
    }, WAIT);
    json(held[0] as ServerResponse, { detail: 'overloaded' }, {}, 503);
    const expected: SearchAnswer = face === 'rest' ? { status: 503, code: 'UPSTREAM_UNAVAILABLE' } : { status: 200, code: 'UPSTREAM_UNAVAILABLE' };
    expect(await answers).toEqual(Array.from({ length: 6 }, () => expected));
    expect(upstream.requests).toHaveLength(1);
    expect(await circuit()).toBe(0);

    // Other clients, on either face: their searches still reach the upstream.
    upstream.behaviour = (_req, res) => json(res, { items: [], total: 7 });
    expect(await search(fx.gateway.url, 'rest', `after-${face}`)).toEqual(found(7));
    expect(await search(fx.gateway.url, 'graphql', `after-${face}`)).toEqual(found(7));
    expect(upstream.requests).toHaveLength(3);
    expect(await circuit()).toBe(0);
  });
});

describe('a coalesced call survives its callers leaving, until the last one', () => {
  const log = captureLog('info');
  const fx = useStack({ env: { LOG_LEVEL: 'info' }, logger: log.logger });

  /** The access line of a request: written once its response is over and its own share of the call ended. */
  const accessLine = (requestId: string) => log.lines.find((line) => line.msg !== undefined && line.requestId === requestId && 'durationMs' in line);

  it.each(FACES)('%s: the first of 30 callers leaving after its call reached the upstream fails no one else; the upstream saw one call', async (face) => {
    const upstream = fx.upstreams.upstreams.search;
    const held = holding(upstream);
    const joins = await joinsSince(fx.gateway.url, 'search');
    const leaving = new AbortController();
    const first = later(search(fx.gateway.url, face, `leave-${face}`, { requestId: `leader-${face}`, signal: leaving.signal }));
    await vi.waitFor(() => expect(held, 'the first caller’s call at the upstream').toHaveLength(1), WAIT);
    const others = later(Promise.all(Array.from({ length: 29 }, (_, index) => search(fx.gateway.url, face, `leave-${face}`, { requestId: `joiner-${face}-${index}` }))));
    await vi.waitFor(async () => expect(await joins(), '29 callers joined the call').toBe(29), WAIT);

    leaving.abort();
    await expect(first).rejects.toThrow();
    await vi.waitFor(() => expect(accessLine(`leader-${face}`), 'the gateway saw the first caller leave').toMatchObject({ status: 499, upstream: [{ service: 'search', status: 'aborted' }] }), WAIT);
    expect(held[0]?.destroyed, 'the shared call still open').toBe(false);

    json(held[0] as ServerResponse, { items: [], total: 3 });
    expect(await others).toEqual(Array.from({ length: 29 }, () => found(3)));
    expect(upstream.requests).toHaveLength(1);
    // Each joiner's access line shows the call it shared.
    await vi.waitFor(() => expect(accessLine(`joiner-${face}-0`), 'a joiner’s access line').toMatchObject({ status: 200, upstream: [{ service: 'search', status: 200 }] }), WAIT);
  });

  it.each(FACES)('%s: the call is cancelled at the upstream once every caller has left', async (face) => {
    const upstream = fx.upstreams.upstreams.search;
    const held = holding(upstream);
    let closed = 0;
    upstream.behaviour = (_req, res) => {
      held.push(res);
      res.on('close', () => (closed += 1));
    };
    const joins = await joinsSince(fx.gateway.url, 'search');
    const aborted = await upstreamCallsSince(fx.gateway.url, 'search', 'GET', 'aborted');
    const leaving = [new AbortController(), new AbortController(), new AbortController()];
    const [leader, ...rest] = leaving;
    const sent = [later(search(fx.gateway.url, face, `all-leave-${face}`, { requestId: `all-leave-${face}-0`, signal: (leader as AbortController).signal }))];
    await vi.waitFor(() => expect(held, 'the call at the upstream').toHaveLength(1), WAIT);
    sent.push(...rest.map((controller, index) => later(search(fx.gateway.url, face, `all-leave-${face}`, { requestId: `all-leave-${face}-${index + 1}`, signal: controller.signal }))));
    await vi.waitFor(async () => expect(await joins(), 'two callers joined the call').toBe(2), WAIT);

    (leader as AbortController).abort();
    (rest[0] as AbortController).abort();
    await Promise.allSettled(sent.slice(0, 2));
    // Once the gateway has seen both leave (their access lines are written then), the call is still open.
    for (const index of [0, 1]) {
      await vi.waitFor(() => expect(accessLine(`all-leave-${face}-${index}`), `the gateway saw caller ${index} leave`).toMatchObject({ status: 499, upstream: [{ service: 'search', status: 'aborted' }] }), WAIT);
    }
    expect(closed, 'the call is kept while one caller waits').toBe(0);
    (rest[1] as AbortController).abort();
    for (const answer of sent) await expect(answer).rejects.toThrow();
    await vi.waitFor(() => expect(closed, 'the upstream saw its call cancelled').toBe(1), WAIT);
    await vi.waitFor(async () => expect(await aborted(), 'the call counted once, as aborted').toBe(1), WAIT);
    expect(upstream.requests).toHaveLength(1);
  });
});

describe('a caller that cannot keep up with a shared answer', () => {
  const ENTRY_BYTES = 256 * 1024;
  const fx = useStack({ env: { UPSTREAM_CACHE_MAX_ENTRY_BYTES: String(ENTRY_BYTES) } });

  it('is cut off once it falls UPSTREAM_CACHE_MAX_ENTRY_BYTES behind, while the others get the whole answer at their pace', async () => {
    const TOTAL = 24 * 1024 * 1024;
    const token = await userToken('1');
    const upstream = fx.upstreams.upstreams.ondemand;
    const held = holding(upstream);
    const joins = await joinsSince(fx.gateway.url, 'ondemand');
    // Two clients of one user, asking the same: the slow one never reads until the fast one is done.
    const client = () => {
      const socket = connect(Number(new URL(fx.gateway.url).port), '127.0.0.1');
      socket.write(`GET /ondemand/movies?page=big HTTP/1.1\r\nHost: gateway.test\r\nAuthorization: Bearer ${token}\r\n\r\n`);
      const read = { bytes: 0, closed: false };
      socket.on('data', (data: Buffer) => (read.bytes += data.length));
      socket.on('close', () => (read.closed = true));
      socket.on('error', () => undefined);
      return { socket, read };
    };
    const slow = client();
    slow.socket.pause();
    const fast = client();
    try {
      await vi.waitFor(async () => {
        expect(held, 'the call at the upstream').toHaveLength(1);
        expect(await joins(), 'the other client joined the call').toBe(1);
      }, WAIT);
      const res = held[0] as ServerResponse;
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(TOTAL) });
      const chunk = Buffer.alloc(64 * 1024, 0x61);
      let written = 0;
      const pump = () => {
        while (written < TOTAL) {
          written += chunk.length;
          if (!res.write(chunk)) return void res.once('drain', pump);
        }
        res.end();
      };
      pump();

      await vi.waitFor(() => expect(fast.read.bytes, 'the whole answer at the fast client').toBeGreaterThan(TOTAL), { ...WAIT, timeout: 25_000 });
      expect(written).toBe(TOTAL);
      expect(upstream.requests).toHaveLength(1);
      // The slow client, reading at last, finds its answer cut short.
      slow.socket.resume();
      await vi.waitFor(() => expect(slow.read.closed, 'the slow client’s connection closed by the gateway').toBe(true), WAIT);
      expect(slow.read.bytes).toBeGreaterThan(0);
      expect(slow.read.bytes).toBeLessThan(TOTAL);
      expect(fast.read.closed).toBe(false);
    } finally {
      slow.socket.destroy();
      fast.socket.destroy();
    }
  });
});

describe('coalescing and who is calling: only calls identical for the upstream share one', () => {
  // The second gateway trusts one proxy in front of it: X-Forwarded-For names the client.
  const fx = useStack({ gateways: [{}, { TRUST_PROXY_HOPS: '1' }], perTest: true });
  let alice: string;
  let aliceAsAdmin: string;
  let bob: string;
  beforeAll(async () => {
    [alice, aliceAsAdmin, bob] = await Promise.all([userToken('1'), adminToken('1'), userToken('2')]);
  });

  /** The upstream keeps every call until the test answers it, each answer naming what that call said of its caller. */
  function held(): [IncomingMessage, ServerResponse][] {
    const calls: [IncomingMessage, ServerResponse][] = [];
    fx.upstreams.upstreams.ondemand.behaviour = (req, res) => void calls.push([req, res]);
    return calls;
  }
  const answerAll = (calls: readonly [IncomingMessage, ServerResponse][]) => {
    for (const [req, res] of calls) {
      const { 'x-user-id': id, 'x-user-roles': roles, 'x-forwarded-for': from } = req.headers;
      json(res, { id: 'm1', title: `${String(id)} ${String(roles)} ${String(from)}`, genres: [], free: true }, { 'cache-control': 'no-store' });
    }
  };
  const movie = (baseUrl: string, token: string, headers: Record<string, string> = {}) =>
    later(fetch(`${baseUrl}/ondemand/movies/m1?who`, { headers: { authorization: `Bearer ${token}`, ...headers } }).then(async (response) => ((await response.json()) as { title: string }).title));

  it('two identities asking the same at once make a call each, each with its own identity headers; one identity shares its call', async () => {
    const calls = held();
    const joins = await joinsSince(fx.gateway.url, 'ondemand');
    // Alice as a user twice, alice with another role (the same subject), bob twice.
    const answers = [alice, alice, aliceAsAdmin, bob, bob].map((token) => movie(fx.gateway.url, token));
    await eventually('three calls at the upstream and two joined', async () => calls.length === 3 && (await joins()) === 2);
    const seen = calls.map(([req]) => [req.headers['x-user-id'], req.headers['x-user-roles'], req.headers.authorization]);
    expect(seen).toEqual(
      expect.arrayContaining([
        ['1', 'user', `Bearer ${alice}`],
        ['1', 'user,admin', `Bearer ${aliceAsAdmin}`],
        ['2', 'user', `Bearer ${bob}`],
      ]),
    );
    answerAll(calls);
    expect(await Promise.all(answers)).toEqual(['1 user 127.0.0.1', '1 user 127.0.0.1', '1 user,admin 127.0.0.1', '2 user 127.0.0.1', '2 user 127.0.0.1']);
  });

  it('one identity at two client addresses makes a call for each address (an upstream may answer by where its client is)', async () => {
    const [, behindProxy] = fx.gateways;
    if (!behindProxy) throw new Error('the stack has a second gateway');
    const calls = held();
    const joins = await joinsSince(behindProxy.url, 'ondemand');
    const answers = ['203.0.113.1', '203.0.113.2', '203.0.113.1'].map((client) => movie(behindProxy.url, alice, { 'x-forwarded-for': client }));
    await eventually('two calls at the upstream and one joined', async () => calls.length === 2 && (await joins()) === 1);
    expect(calls.map(([req]) => req.headers['x-forwarded-for']).sort()).toEqual(['203.0.113.1, 127.0.0.1', '203.0.113.2, 127.0.0.1']);
    answerAll(calls);
    expect(await Promise.all(answers)).toEqual(['1 user 203.0.113.1, 127.0.0.1', '1 user 203.0.113.2, 127.0.0.1', '1 user 203.0.113.1, 127.0.0.1']);
  });

  it.each(['anonymous', 'alice'] as const)('GraphQL, %s: two client addresses asking the same at once make a call each, each carrying its own address', async (who) => {
    const [, behindProxy] = fx.gateways;
    if (!behindProxy) throw new Error('the stack has a second gateway');
    const calls = held();
    const joins = await joinsSince(behindProxy.url, 'ondemand');
    const title = (client: string) =>
      later(
        fetch(`${behindProxy.url}/graphql`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'x-forwarded-for': client, ...(who === 'alice' ? { authorization: `Bearer ${alice}` } : {}) },
          body: JSON.stringify({ query: '{ movie(id: "m1") { title } }' }),
        }).then(async (response) => ((await response.json()) as { data: { movie: { title: string } } }).data.movie.title),
      );
    const answers = ['203.0.113.1', '203.0.113.2', '203.0.113.1'].map(title);
    await eventually('two calls at the upstream and one joined', async () => calls.length === 2 && (await joins()) === 1);
    expect(calls.map(([req]) => req.headers['x-forwarded-for']).sort()).toEqual(['203.0.113.1, 127.0.0.1', '203.0.113.2, 127.0.0.1']);
    expect(calls.map(([req]) => req.url)).toEqual(['/ondemand/movies/batch?ids=m1', '/ondemand/movies/batch?ids=m1']);
    // Each call answered with what it said of its caller.
    for (const [req, res] of calls) {
      const { 'x-user-id': id, 'x-forwarded-for': from } = req.headers;
      json(res, { items: [{ id: 'm1', title: `${String(id)} ${String(from)}`, genres: [], free: true }] }, { 'cache-control': 'no-store' });
    }
    const id = who === 'alice' ? '1' : 'undefined';
    expect(await Promise.all(answers)).toEqual([`${id} 203.0.113.1, 127.0.0.1`, `${id} 203.0.113.2, 127.0.0.1`, `${id} 203.0.113.1, 127.0.0.1`]);
  });
});

describe('the shared cache and the identity the gateway adds', () => {
  const fx = useStack({ perTest: true });
  let alice: string;
  let bob: string;
  beforeAll(async () => {
    [alice, bob] = await Promise.all([userToken('1'), userToken('2')]);
  });

  const me = (req: IncomingMessage, cacheControl: string) => ({ body: { id: req.headers['x-user-id'], username: `user${String(req.headers['x-user-id'])}`, email: 'u@example.com', roles: ['user'] }, cacheControl });
  const restMe = async (token: string) => ((await (await fetch(`${fx.gateway.url}/users/me`, { headers: { authorization: `Bearer ${token}` } })).json()) as { id: string }).id;
  const graphqlMe = async (token: string) => ((await graphql(fx.gateway.url, '{ me { id } }', { token })).data?.me as { id: string } | undefined)?.id;

  it.each(['max-age=60, must-revalidate', 's-maxage=60', 'max-age=60, s-maxage=60, must-revalidate'])('never serves alice’s /users/me marked %j to bob, on REST or GraphQL', async (cacheControl) => {
    const users = fx.upstreams.upstreams.users;
    users.behaviour = (req, res) => {
      const answer = me(req, cacheControl);
      json(res, answer.body, { 'cache-control': answer.cacheControl });
    };
    expect([await restMe(alice), await restMe(bob), await restMe(alice)]).toEqual(['1', '2', '1']);
    expect([await graphqlMe(alice), await graphqlMe(bob)]).toEqual(['1', '2']);
    expect(users.requests.map((request) => request.headers['x-user-id'])).toEqual(['1', '2', '1', '1', '2']);
  });

  it('still keeps a public answer, anonymous or not, for everyone', async () => {
    const search = fx.upstreams.upstreams.search;
    search.behaviour = (_req, res) => json(res, { items: [], total: 1 }, { 'cache-control': 'public, max-age=60' });
    for (const token of [undefined, alice, bob]) {
      const response = await fetch(`${fx.gateway.url}/search/global?q=kept`, { headers: token ? { authorization: `Bearer ${token}` } : {} });
      expect(response.status).toBe(200);
      await response.text();
    }
    expect(search.requests).toHaveLength(1);
  });
});

describe('authenticated answers go out private, on both faces', () => {
  const fx = useStack({});
  const SHAREABLE = 'public, max-age=60, s-maxage=600, must-revalidate';
  let user: string;
  let admin: string;
  beforeAll(async () => {
    [user, admin] = await Promise.all([userToken('1'), adminToken('3')]);
  });

  const routes = ROUTES.filter((route) => route.methods.includes('GET') && (route.access === 'user' || route.access === 'admin'));

  it.each(routes.map((route) => [route.prefix, route]))('GET %s: an upstream’s public answer is relayed private, its lifetimes kept', async (_prefix, route) => {
    fx.upstreams.upstreams[route.upstream].behaviour = (_req, res) => json(res, [], { 'cache-control': SHAREABLE });
    const path = `${route.prefix}/cache-check`;
    // Twice: the second answer comes from the shared cache, and is just as private.
    for (let round = 0; round < 2; round++) {
      const response = await fetch(`${fx.gateway.url}${path}`, { headers: { authorization: `Bearer ${route.access === 'admin' ? admin : user}` } });
      expect(response.status, path).toBe(200);
      expect(response.headers.get('cache-control'), path).toBe('private, max-age=60, must-revalidate');
      await response.text();
    }
  });

  it('an answer the upstream said nothing about goes out private too; an anonymous public one stays public', async () => {
    fx.upstreams.upstreams.search.behaviour = (req, res) => json(res, { items: [], total: 0 }, req.url?.includes('plain') ? {} : { 'cache-control': SHAREABLE });
    const withToken = await fetch(`${fx.gateway.url}/search/global?q=plain`, { headers: { authorization: `Bearer ${user}` } });
    expect(withToken.headers.get('cache-control')).toBe('private');
    const anonymous = await fetch(`${fx.gateway.url}/search/global?q=shared`);
    expect(anonymous.headers.get('cache-control')).toBe(SHAREABLE);
    const authenticated = await fetch(`${fx.gateway.url}/search/global?q=shared`, { headers: { authorization: `Bearer ${user}` } });
    expect(authenticated.headers.get('cache-control')).toBe('private, max-age=60, must-revalidate');
    await Promise.all([withToken, anonymous, authenticated].map((response) => response.text()));
  });

  it('GraphQL: an answer made of public upstream answers is private for a token (and varies on it), public only for anonymous requests', async () => {
    // The shared cache reads Date.now: it stands still until the test ends, so a stored answer ages by
    // nothing; on a whole second, so that the upstream's Date header (whole seconds) adds no age either.
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(Math.floor(Date.now() / 1000) * 1000);
    onTestFinished(() => void vi.useRealTimers());
    fx.upstreams.upstreams.rights.behaviour = (_req, res) => json(res, [{ id: 'basic', name: 'Basic' }], { 'cache-control': 'public, s-maxage=300' });
    const ask = (headers: Record<string, string>) => fetch(`${fx.gateway.url}/graphql`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify({ query: '{ plans { id } }' }) });
    const authenticated = await ask({ authorization: `Bearer ${user}` });
    expect(authenticated.headers.get('cache-control')).toBe('private, max-age=300');
    expect(authenticated.headers.get('vary')).toMatch(/\bauthorization\b/i);
    const anonymous = await ask({});
    expect(anonymous.headers.get('cache-control')).toBe('public, max-age=300');
    await Promise.all([authenticated.text(), anonymous.text()]);
  });
});

describe('an upstream 204 with a body', () => {
  const fx = useStack({});

  /** Reads from `socket` until `text` (so far) passes `done`. */
  const readUntil = (socket: Socket, received: { text: string }, done: (text: string) => boolean) =>
    vi.waitFor(() => expect(done(received.text), `the gateway's answer on the same connection, so far: ${JSON.stringify(received.text)}`).toBe(true), WAIT);

  it('reaches the client as a 204 without Content-Length, and the next request on the same keep-alive connection is answered', async () => {
    const token = await userToken('1');
    fx.upstreams.upstreams.ondemand.behaviour = (req, res) => {
      if (req.method === 'DELETE') res.writeHead(204, { 'content-length': '5', 'content-type': 'text/plain' }).end('hello');
      else json(res, { id: 'm1' });
    };
    const socket = connect(Number(new URL(fx.gateway.url).port), '127.0.0.1');
    const received = { text: '' };
    socket.on('data', (data: Buffer) => (received.text += data.toString('latin1')));
    try {
      const head = (method: string) => `${method} /ondemand/movies/m1 HTTP/1.1\r\nHost: gateway.test\r\nAuthorization: Bearer ${token}\r\n\r\n`;
      socket.write(head('DELETE'));
      await readUntil(socket, received, (text) => text.includes('\r\n\r\n'));
      const [first = '', after = ''] = received.text.split(/\r\n\r\n(.*)/s);
      expect(first).toMatch(/^HTTP\/1\.1 204 /);
      expect(first).not.toMatch(/^content-length:/im);
      expect(first).not.toMatch(/^transfer-encoding:/im);
      expect(after).toBe('');

      socket.write(head('GET'));
      await readUntil(socket, received, (text) => text.includes('{"id":"m1"}'));
      expect(received.text.slice(first.length + 4)).toMatch(/^HTTP\/1\.1 200 /);
      expect(fx.upstreams.upstreams.ondemand.requests.map((request) => request.method)).toEqual(['DELETE', 'GET']);
    } finally {
      socket.destroy();
    }
  });
});

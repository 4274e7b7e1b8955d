/**
 * The per-address limits tried from the attacker's side, on both faces: spellings of a guarded route,
 * IPv6 addresses of one subscriber, a flood of password guesses, and a gateway whose event loop stalls
 * while its Redis limiter waits for answers.
 */
import { tracingChannel } from 'node:diagnostics_channel';
import { beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import type { CountedCall } from '../helpers/counting-proxy.js';
import { captureLog } from '../helpers/gateway.js';
import { sample, storeConnected } from '../helpers/metrics.js';
import { rawGet, type RawResponse } from '../helpers/raw-http.js';
import { useRedis } from '../helpers/redis.js';
import { useStack } from '../helpers/stack.js';
import { userToken } from '../helpers/tokens.js';
import { eventually } from '../helpers/wait.js';

/** The headers of a request a trusted proxy (TRUST_PROXY_HOPS=1) forwarded for `address`. */
const from = (address: string) => ({ 'x-forwarded-for': address });

/** How a refusal reads on either face: the HTTP status, the catalogue code (if any), Retry-After (if any). */
interface Outcome {
  readonly status: number;
  readonly code?: string;
  readonly retryAfter?: string;
}

/** A raw HTTP/1.1 answer (Content-Length framed, as the gateway's own answers are) as an Outcome. */
function outcomeOfRaw(raw: RawResponse): Outcome {
  const [head = '', body = ''] = raw.text.split('\r\n\r\n', 2);
  const retryAfter = /^retry-after: *(\S+)/im.exec(head)?.[1];
  const code = /^content-type: *application\/problem\+json/im.test(head) ? (JSON.parse(body) as { code: string }).code : undefined;
  return { status: raw.status, ...(code ? { code } : {}), ...(retryAfter ? { retryAfter } : {}) };
}

async function outcomeOf(response: Response): Promise<Outcome> {
  const retryAfter = response.headers.get('retry-after');
  const type = response.headers.get('content-type') ?? '';
  const body = (await response.json()) as { code?: string; errors?: { extensions: { code: string } }[] };
  const code = type.startsWith('application/problem+json') ? body.code : body.errors?.[0]?.extensions.code;
  return { status: response.status, ...(code ? { code } : {}), ...(retryAfter ? { retryAfter } : {}) };
}

const postJson = (url: string, body: unknown, headers: Record<string, string> = {}) =>
  fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });

const REGISTER = 'mutation ($u: String!, $p: String!, $e: String!) { register(username: $u, password: $p, email: $e) { id } }';
const LOGIN = 'mutation ($u: String!, $p: String!) { login(username: $u, password: $p) { access_token } }';

/** One registration through GraphQL, as an Outcome. */
async function registerByGraphQL(baseUrl: string, account: { username: string; password: string; email: string }, headers: Record<string, string>): Promise<Outcome> {
  return outcomeOf(await postJson(`${baseUrl}/graphql`, { query: REGISTER, variables: { u: account.username, p: account.password, e: account.email } }, headers));
}

const refused: Outcome = { status: 429, code: 'RATE_LIMITED', retryAfter: expect.stringMatching(/^[1-9]\d*$/) as unknown as string };

describe('account creation, however the route is spelt (REGISTRATIONS_PER_HOUR)', () => {
  const fx = useStack({ upstreams: 'reference', counting: true, env: { REGISTRATIONS_PER_HOUR: '3', TRUST_PROXY_HOPS: '1' } });

  it('counts every spelling that reaches register, REST and GraphQL, against one bucket: three accounts, then 429', async () => {
    const attacker = from('203.0.113.10');
    let made = 0;
    const account = () => {
      made += 1;
      return { username: `variant${made}`, password: 'variant-password', email: `variant${made}@example.com` };
    };
    const rest = async (target: string) => outcomeOfRaw(await rawGet(fx.gateway.url, target, { ...attacker, 'content-type': 'application/json' }, 'POST', JSON.stringify(account())));
    const viaGraphQL = () => registerByGraphQL(fx.gateway.url, account(), attacker);

    // A path under /auth that reaches no operation is forwarded (the service says 404) and counts for nothing.
    expect(await rest('/auth/registers')).toMatchObject({ status: 404, code: 'NOT_FOUND' });
    expect((await rest('/auth/register/')).status).toBe(201);
    expect(await viaGraphQL()).toEqual({ status: 200 });
    expect((await rest('/auth/./register/')).status).toBe(201);
    for (const target of ['/auth/register//', '/auth/%72egister', '/auth/x/../register', '/auth/register/.', '//auth//register']) {
      expect(await rest(target), target).toEqual(refused);
    }
    // Execution had begun: the field's error, in a 200.
    expect(await viaGraphQL()).toEqual({ status: 200, code: 'RATE_LIMITED' });
    // What reached the authentication service: the 404 and three registrations, nothing after.
    expect(fx.counting.calls.filter((call) => call.upstream === 'auth').map((call) => `${call.method} ${call.url}`)).toEqual([
      'POST /auth/registers',
      'POST /auth/register/',
      'POST /auth/register',
      'POST /auth/register/',
    ]);
    // Another address still has its own allowance.
    expect((await rest('/auth/register')).status).toBe(429);
    expect(outcomeOfRaw(await rawGet(fx.gateway.url, '/auth/register/', { ...from('203.0.113.11'), 'content-type': 'application/json' }, 'POST', JSON.stringify(account()))).status).toBe(201);
  });
});

describe('IPv6 clients grouped by prefix (RATE_LIMIT_IPV6_PREFIX)', () => {
  const fx = useStack({ env: { TRUST_PROXY_HOPS: '1', RATE_LIMIT_PER_MINUTE: '5', REGISTRATIONS_PER_HOUR: '2' }, gateways: [{}, { RATE_LIMIT_IPV6_PREFIX: '48' }] });

  /** `count` addresses of `prefix` (a /64), in the spellings a proxy may write them. */
  const addressesOf = (prefix: string, count: number) =>
    Array.from({ length: count }, (_, i) => {
      const address = `${prefix}:${((0x1000 + i * 7919) % 0x10000).toString(16)}:${i.toString(16)}:ff${i % 10}:${(i * 31).toString(16)}`;
      return i % 3 === 0 ? address.toUpperCase() : i % 3 === 1 ? `[${address}]:443` : address;
    });

  const search = async (baseUrl: string, address: string) => outcomeOf(await fetch(`${baseUrl}/search/global?q=a`, { headers: from(address) }));

  it('gives 30 addresses of one /64 one request bucket between them; the next /64 has its own', async () => {
    const outcomes = [];
    for (const address of addressesOf('2001:db8:1:2', 30)) outcomes.push(await search(fx.gateway.url, address));
    expect(outcomes.slice(0, 5).map((outcome) => outcome.status)).toEqual([200, 200, 200, 200, 200]);
    for (const outcome of outcomes.slice(5)) expect(outcome).toEqual(refused);
    expect(fx.upstreams.upstreams.search.requests).toHaveLength(5);
    expect((await search(fx.gateway.url, '2001:db8:1:3::1')).status).toBe(200);
  });

  it('counts an IPv4-mapped IPv6 address as its IPv4 address', async () => {
    for (let i = 0; i < 5; i++) expect((await search(fx.gateway.url, '198.51.100.7')).status).toBe(200);
    expect(await search(fx.gateway.url, '::ffff:198.51.100.7')).toEqual(refused);
    expect(await search(fx.gateway.url, '::ffff:c633:6407')).toEqual(refused);
    expect(fx.upstreams.upstreams.search.requests).toHaveLength(5);
  });

  it('lets 30 addresses of one /64 create two accounts between them, REST and GraphQL alike', async () => {
    fx.upstreams.upstreams.auth.behaviour = (_req, res) => void res.writeHead(201, { 'content-type': 'application/json' }).end('{"id":"9","username":"new","email":"n@example.com","roles":["user"]}');
    const account = { username: 'new', password: 'new-password', email: 'n@example.com' };
    const outcomes = [];
    for (const [i, address] of addressesOf('2001:db8:5:6', 30).entries()) {
      outcomes.push(i % 2 === 0 ? await outcomeOf(await postJson(`${fx.gateway.url}/auth/register`, account, from(address))) : await registerByGraphQL(fx.gateway.url, account, from(address)));
    }
    expect(outcomes.slice(0, 2)).toEqual([{ status: 201 }, { status: 200 }]);
    // Refused by the registration guard (GraphQL: the field's error, in a 200), then, past the /64's five
    // requests a minute, by its request bucket before anything else (a 429 on both faces).
    for (const [i, outcome] of outcomes.entries()) {
      if (i >= 2) expect(outcome, `attempt ${i}`).toEqual(i < 5 && i % 2 === 1 ? { status: 200, code: 'RATE_LIMITED' } : refused);
    }
    expect(fx.upstreams.upstreams.auth.requests.map((request) => `${request.method} ${request.url}`)).toEqual(['POST /auth/register', 'POST /auth/register']);
  });

  it('with RATE_LIMIT_IPV6_PREFIX=48, groups the /64s of one /48', async () => {
    const second = fx.gateways[1]?.url ?? '';
    const outcomes = [];
    for (let subnet = 1; subnet <= 8; subnet++) outcomes.push(await search(second, `2001:db8:9:${subnet}::1`));
    expect(outcomes.map((outcome) => outcome.status)).toEqual([200, 200, 200, 200, 200, 429, 429, 429]);
    expect((await search(second, '2001:db8:a:1::1')).status).toBe(200);
  });
});

describe('a flood of password guesses (CREDENTIAL_CALLS_PER_CLIENT)', () => {
  const fx = useStack({
    upstreams: 'reference',
    counting: true,
    env: { TRUST_PROXY_HOPS: '1', RATE_LIMIT_PER_MINUTE: '600', CREDENTIAL_CALLS_PER_CLIENT: '2', UPSTREAM_BREAKER_FAILURES: '5', UPSTREAM_TIMEOUT_MS: '10000' },
  });

  it('400 wrong-password logins at once from one address, REST and GraphQL: 429s past 2 in flight; another user’s 20 logins all succeed; the circuit stays closed', async () => {
    const attacker = '203.0.113.66';
    const victimAddress = '198.51.100.20';
    const guess = { username: 'alice', password: 'not-alices-password' };
    const attempt = async (i: number): Promise<Outcome & { face: string }> =>
      i % 2 === 0
        ? { face: 'rest', ...(await outcomeOf(await postJson(`${fx.gateway.url}/auth/login`, guess, from(attacker)))) }
        : { face: 'graphql', ...(await outcomeOf(await postJson(`${fx.gateway.url}/graphql`, { query: LOGIN, variables: { u: guess.username, p: guess.password } }, from(attacker)))) };
    const started = performance.now();
    const attack = Promise.all(Array.from({ length: 400 }, (_, i) => attempt(i))).then((outcomes) => ({ outcomes, ms: performance.now() - started }));

    // Meanwhile, someone else logs in, once at a time, on both faces.
    const victim: { status: number; ok: boolean; ms: number }[] = [];
    for (let i = 0; i < 20; i++) {
      const begun = performance.now();
      const headers = from(victimAddress);
      const response =
        i % 2 === 0
          ? await postJson(`${fx.gateway.url}/auth/login`, { username: 'bob', password: 'bob-password' }, headers)
          : await postJson(`${fx.gateway.url}/graphql`, { query: LOGIN, variables: { u: 'bob', p: 'bob-password' } }, headers);
      const body = (await response.json()) as { access_token?: string; data?: { login?: { access_token?: string } } };
      victim.push({ status: response.status, ok: Boolean(body.access_token ?? body.data?.login?.access_token), ms: performance.now() - begun });
    }
    const { outcomes, ms: attackMs } = await attack;

    expect(victim.map((login) => [login.status, login.ok])).toEqual(Array.from({ length: 20 }, () => [200, true]));
    for (const face of ['rest', 'graphql']) {
      const mine = outcomes.filter((outcome) => outcome.face === face);
      expect(mine.filter((outcome) => outcome.code === 'RATE_LIMITED').length, face).toBeGreaterThan(0);
      expect(new Set(mine.map((outcome) => outcome.code)), face).toEqual(new Set(['RATE_LIMITED', 'UNAUTHENTICATED']));
    }
    for (const outcome of outcomes.filter((o) => o.face === 'rest' && o.code === 'RATE_LIMITED')) expect(outcome).toEqual({ face: 'rest', ...refused });

    // What the authentication service saw: never more than 2 of the attacker's logins at once, one for
    // each guess that was answered 401, and the other user's logins answered at once.
    const loginsFor = (address: string) => (call: CountedCall) => call.upstream === 'auth' && call.url === '/auth/login' && String(call.headers['x-forwarded-for']).startsWith(address);
    const reached = fx.counting.calls.filter(loginsFor(attacker)).length;
    expect(reached).toBe(outcomes.filter((outcome) => outcome.code === 'UNAUTHENTICATED').length);
    expect(fx.counting.peakInFlight(loginsFor(attacker))).toBeLessThanOrEqual(2);
    const upstreamMs = fx.counting.calls.filter(loginsFor(victimAddress)).map((call) => (call.endedMs ?? Infinity) - call.startedMs);
    const slowest = Math.max(...victim.map((login) => login.ms));
    console.info(
      `credential flood: ${reached} of the attacker's 400 guesses reached the service (the rest 429) in ${Math.round(attackMs)} ms; ` +
        `the other user's 20 logins: slowest ${Math.round(slowest)} ms at the client, ${Math.round(Math.max(...upstreamMs))} ms at the service`,
    );
    // Generous: unbounded, the 400 guesses queued ahead of it at the service for 10-20 s (and timed out).
    expect(Math.max(...upstreamMs), 'the slowest of the other user’s logins at the service, in ms').toBeLessThan(3000);

    const metrics = await (await fetch(`${fx.gateway.url}/metrics`)).text();
    expect(sample(metrics, 'gateway_upstream_circuit_state', { service: 'auth' })).toBe(0);
  });
});

/** Blocks this process's event loop, which the in-process gateway shares, for `ms`. */
function stallEventLoop(ms: number): void {
  const until = performance.now() + ms;
  while (performance.now() < until) {
    // Busy: nothing else runs meanwhile.
  }
}

describe('the Redis limiter when the gateway’s event loop stalls', () => {
  const redis = useRedis();
  const log = captureLog('warn');
  const fx = useStack({ env: () => ({ RATE_LIMIT_PER_MINUTE: '2', REDIS_URL: redis.url }), logger: log.logger });
  beforeAll(() => storeConnected(fx.gateway.url));

  it('refuses every request past an empty bucket, however long the loop stalls while Redis answers', async () => {
    const token = await userToken('stalled-1');
    const get = () => fetch(`${fx.gateway.url}/users/me`, { headers: { authorization: `Bearer ${token}` } });
    expect([(await get()).status, (await get()).status, (await get()).status]).toEqual([200, 200, 429]);

    // Once the last of the requests has sent its command to Redis (ioredis's own diagnostics channel
    // says so as it writes), the loop stalls: Redis answers them all meanwhile, and each request's
    // deadline is long past when the loop runs again.
    const requests = 10;
    const port = Number(new URL(redis.url).port);
    let sent = 0;
    const onCommand = (context: object) => {
      const { command, serverPort } = context as { command: string; serverPort: number };
      if (serverPort !== port || !command.startsWith('eval')) return;
      sent += 1;
      if (sent === requests) queueMicrotask(() => stallEventLoop(400));
    };
    const commands = tracingChannel('ioredis:command');
    commands.subscribe({ start: onCommand, end: () => undefined, asyncStart: () => undefined, asyncEnd: () => undefined, error: () => undefined });
    onTestFinished(() => commands.unsubscribe({ start: onCommand, end: () => undefined, asyncStart: () => undefined, asyncEnd: () => undefined, error: () => undefined }));
    const statuses = await Promise.all(Array.from({ length: requests }, async () => (await get()).status));
    expect(sent).toBe(requests);
    expect(statuses).toEqual(Array.from({ length: requests }, () => 429));
    expect(fx.upstreams.all()).toHaveLength(2);
  });

  it('still lets requests through when Redis itself does not answer (SIGSTOP), and limits again once it does (SIGCONT)', async () => {
    const token = await userToken('stalled-2');
    const get = () => fetch(`${fx.gateway.url}/users/me`, { headers: { authorization: `Bearer ${token}` } });
    expect([(await get()).status, (await get()).status, (await get()).status]).toEqual([200, 200, 429]);
    redis.pause();
    onTestFinished(() => redis.resume());
    const begun = performance.now();
    const response = await get();
    const waited = performance.now() - begun;
    expect(response.status).toBe(200);
    console.info(`paused Redis: the request was let through after ${Math.round(waited)} ms`);
    // Through the gateway's own 250 ms deadline, not ioredis's 2 s backstop; logged once a PING goes unanswered too.
    await eventually('the outage logged, with why', () => log.lines.some((line) => line.err === 'Redis did not answer within 250 ms'));
    redis.resume();
    await eventually('a 429 again, once Redis answers', async () => (await get()).status === 429);
  });
});

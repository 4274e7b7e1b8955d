/**
 * Circuit breaking and retries in the upstream client, on both faces. Requests are dispatched
 * in-process (gateway.inject); the upstreams are real servers on real sockets, or a closed port.
 */
import { createServer as createTcpServer, type Server as TcpServer } from 'node:net';
import type { ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import type { Gateway } from '../../gateway/src/server.js';
import type { UpstreamName } from '../../shared/upstreams.js';
import { startGateway, type RunningGateway } from '../helpers/gateway.js';
import { sample } from '../helpers/metrics.js';
import { freePortBlock } from '../helpers/ports.js';
import { startRecordingUpstreams, type RecordingUpstream, type RecordingUpstreams } from '../helpers/recording-upstream.js';
import { signToken, TEST_SECRET } from '../helpers/tokens.js';
import { WAIT, within } from '../helpers/wait.js';

/** Breakers on, time in the test's hands: an open circuit turns half-open only when the test says. */
const BREAKER = { JWT_SECRET_KEY: TEST_SECRET, UPSTREAM_BREAKER_FAILURES: '3', UPSTREAM_BREAKER_OPEN_MS: '60000' };
const OPEN_MS = 60_000;

let upstreams: RecordingUpstreams;
let token: string;

beforeAll(async () => {
  upstreams = await startRecordingUpstreams();
  token = await signToken({ sub: '5', roles: ['user'] });
});
afterAll(async () => upstreams.close());
beforeEach(() => upstreams.reset());

async function metricsOf(gateway: Gateway): Promise<string> {
  return (await gateway.inject('/metrics')).body;
}

async function circuitState(gateway: Gateway, service: UpstreamName): Promise<number | undefined> {
  return sample(await metricsOf(gateway), 'gateway_upstream_circuit_state', { service });
}

/** Waits until `count` calls to `service` have joined an identical call in flight. */
async function joined(gateway: Gateway, service: UpstreamName, count: number): Promise<void> {
  await vi.waitFor(async () => expect(sample(await metricsOf(gateway), 'gateway_upstream_coalesced_total', { service }), `${count} calls joined one in flight`).toBe(count), WAIT);
}

const failWith500 = (_req: unknown, res: ServerResponse) => void res.writeHead(500, { 'content-type': 'application/json' }).end('{"detail":"boom"}');
const answerJson = (body: unknown) => (_req: unknown, res: ServerResponse) => void res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(body));

/** The upstream holds the next request it gets until the test answers it. */
function holdNext(upstream: RecordingUpstream): { arrived: Promise<void>; answer: (respond: (res: ServerResponse) => void) => void } {
  let held: ServerResponse | undefined;
  let arrive!: () => void;
  const arrived = new Promise<void>((resolve) => (arrive = resolve));
  upstream.behaviour = (_req, res) => {
    held = res;
    arrive();
  };
  return { arrived, answer: (respond) => respond(held as ServerResponse) };
}

describe('the circuit breaker on the REST face', () => {
  const clock = { now: Date.now() };
  let running: RunningGateway;
  beforeAll(async () => {
    running = await startGateway(upstreams.urls, BREAKER, { graphql: false, now: () => clock.now });
  });
  afterAll(async () => running.close());

  const get = () => running.gateway.inject({ url: '/livetv/channels', headers: { authorization: `Bearer ${token}` } });

  it('opens after consecutive failures, refuses at once while open, probes once half-open, closes on success', async () => {
    const livetv = upstreams.upstreams.livetv;
    livetv.behaviour = failWith500;
    expect(await circuitState(running.gateway, 'livetv')).toBe(0);
    for (let i = 0; i < 3; i++) expect((await get()).statusCode).toBe(500);
    expect(livetv.requests).toHaveLength(3);
    expect(await circuitState(running.gateway, 'livetv')).toBe(2);

    clock.now += OPEN_MS / 2;
    const refused = await get();
    expect(refused.statusCode).toBe(503);
    expect(refused.headers['retry-after']).toBe('30');
    expect(refused.json()).toMatchObject({ code: 'UPSTREAM_UNAVAILABLE', detail: 'The live TV service is unavailable' });
    expect(livetv.requests).toHaveLength(3);

    // Half-open: one probe goes through; while it is out, every other call is still refused (an
    // identical one joins the probe: it is the same call).
    clock.now += OPEN_MS / 2;
    const held = holdNext(livetv);
    const probe = get();
    await within('the probe at the upstream', held.arrived);
    expect(await circuitState(running.gateway, 'livetv')).toBe(1);
    expect((await running.gateway.inject({ url: '/livetv/channels/c1', headers: { authorization: `Bearer ${token}` } })).statusCode).toBe(503);
    const joining = get();
    await joined(running.gateway, 'livetv', 1);
    expect(livetv.requests).toHaveLength(4);
    held.answer((res) => answerJson([])(undefined, res));
    expect((await probe).statusCode).toBe(200);
    expect((await joining).statusCode).toBe(200);
    expect(await circuitState(running.gateway, 'livetv')).toBe(0);

    livetv.behaviour = answerJson([]);
    expect((await get()).statusCode).toBe(200);
    expect(livetv.requests).toHaveLength(5);
  });

  it('opens again for a full period when the probe fails', async () => {
    const ondemand = upstreams.upstreams.ondemand;
    const send = () => running.gateway.inject({ url: '/ondemand/movies', headers: { authorization: `Bearer ${token}` } });
    ondemand.behaviour = (_req, res) => void res.destroy();
    for (let i = 0; i < 3; i++) expect((await send()).statusCode).toBe(503);
    expect(await circuitState(running.gateway, 'ondemand')).toBe(2);
    clock.now += OPEN_MS;
    ondemand.behaviour = failWith500;
    expect((await send()).statusCode).toBe(500);
    expect(ondemand.requests).toHaveLength(4);
    expect(await circuitState(running.gateway, 'ondemand')).toBe(2);
    clock.now += OPEN_MS - 1;
    expect((await send()).statusCode).toBe(503);
    expect(ondemand.requests).toHaveLength(4);
  });

  it('counts neither 4xx answers nor a client’s mistakes against the upstream', async () => {
    const users = upstreams.upstreams.users;
    users.behaviour = (_req, res) => void res.writeHead(404, { 'content-type': 'application/json' }).end('{"detail":"No such user"}');
    for (let i = 0; i < 5; i++) expect((await running.gateway.inject({ url: '/users/nobody', headers: { authorization: `Bearer ${token}` } })).statusCode).toBe(404);
    expect(await circuitState(running.gateway, 'users')).toBe(0);
    expect(users.requests).toHaveLength(5);
  });
});

describe('the circuit breaker on the GraphQL face', () => {
  const clock = { now: Date.now() };
  let running: RunningGateway;
  beforeAll(async () => {
    running = await startGateway(upstreams.urls, BREAKER, { now: () => clock.now });
  });
  afterAll(async () => running.close());

  const plans = () => running.gateway.inject({ method: 'POST', url: '/graphql', headers: { 'content-type': 'application/json' }, payload: { query: '{ plans { id } }' } });

  it('is the same breaker as REST’s: REST failures open it, GraphQL is refused without a call, and the probe closes it', async () => {
    const rights = upstreams.upstreams.rights;
    rights.behaviour = (_req, res) => void res.destroy();
    for (let i = 0; i < 3; i++) {
      expect((await running.gateway.inject({ url: '/subscriptions/plans', headers: { authorization: `Bearer ${token}` } })).statusCode).toBe(503);
    }
    const refused = await plans();
    expect(refused.statusCode).toBe(200);
    expect(refused.json()).toMatchObject({ data: { plans: null }, errors: [{ message: 'The rights management service is unavailable', extensions: { code: 'UPSTREAM_UNAVAILABLE' } }] });
    expect(rights.requests).toHaveLength(3);

    clock.now += OPEN_MS;
    const held = holdNext(rights);
    const probe = plans();
    await within('the probe at the upstream', held.arrived);
    expect(await circuitState(running.gateway, 'rights')).toBe(1);
    const subscribe = await running.gateway.inject({ method: 'POST', url: '/graphql', headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` }, payload: { query: 'mutation { subscribe(planId: "basic") { planId } }' } });
    expect(subscribe.json()).toMatchObject({ data: null, errors: [{ extensions: { code: 'UPSTREAM_UNAVAILABLE' } }] });
    const joining = plans();
    await joined(running.gateway, 'rights', 1);
    held.answer((res) => answerJson([{ id: 'basic', name: 'Basic' }])(undefined, res));
    expect((await probe).json()).toEqual({ data: { plans: [{ id: 'basic' }] } });
    expect((await joining).json()).toEqual({ data: { plans: [{ id: 'basic' }] } });
    expect(await circuitState(running.gateway, 'rights')).toBe(0);
    expect(rights.requests).toHaveLength(4);
  });
});

describe('retries', () => {
  let closedPort: string;
  let refusing: RunningGateway;

  beforeAll(async () => {
    closedPort = `http://127.0.0.1:${await freePortBlock(1)}`;
    refusing = await startGateway({ ...upstreams.urls, livetv: closedPort, auth: closedPort, ondemand: closedPort }, { JWT_SECRET_KEY: TEST_SECRET });
  });
  afterAll(async () => refusing.close());

  const attempts = async (service: UpstreamName, method: string) =>
    sample(await metricsOf(refusing.gateway), 'gateway_upstream_requests_total', { service, method, status: 'unreachable' }) ?? 0;

  it.each([
    ['GET', 2],
    ['DELETE', 2],
    ['PUT', 2],
    ['POST', 1],
    ['PATCH', 1],
  ] as const)('a refused connection is retried once for %s only when it is idempotent (%i attempts)', async (method, expected) => {
    const before = await attempts('livetv', method);
    const response = await refusing.gateway.inject({ method, url: '/livetv/channels/c1', headers: { authorization: `Bearer ${token}` } });
    expect(response.statusCode).toBe(503);
    expect(response.json()).toMatchObject({ code: 'UPSTREAM_UNAVAILABLE', detail: 'The live TV service is unavailable' });
    expect((await attempts('livetv', method)) - before).toBe(expected);
  });

  it('is retried with a small body (read whole first), never with a streamed one, which is gone once sent', async () => {
    const send = (payload: string) =>
      refusing.gateway.inject({ method: 'PUT', url: '/livetv/channels/c1', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, payload });
    const before = await attempts('livetv', 'PUT');
    expect((await send('{"name":"x"}')).statusCode).toBe(503);
    expect((await attempts('livetv', 'PUT')) - before).toBe(2);
    expect((await send(JSON.stringify({ name: 'x'.repeat(100_000) }))).statusCode).toBe(503);
    expect((await attempts('livetv', 'PUT')) - before).toBe(3);
  });

  it('applies on the GraphQL face too: a query retried once, a mutation never', async () => {
    const gets = await attempts('livetv', 'GET');
    const channels = await refusing.gateway.inject({ method: 'POST', url: '/graphql', headers: { 'content-type': 'application/json' }, payload: { query: '{ channels { id } }' } });
    expect(channels.json()).toMatchObject({ errors: [{ extensions: { code: 'UPSTREAM_UNAVAILABLE' } }] });
    expect((await attempts('livetv', 'GET')) - gets).toBe(2);
    const posts = await attempts('auth', 'POST');
    await refusing.gateway.inject({ method: 'POST', url: '/graphql', headers: { 'content-type': 'application/json' }, payload: { query: 'mutation { login(username: "a", password: "b") { access_token } }' } });
    expect((await attempts('auth', 'POST')) - posts).toBe(1);
    const deletes = await attempts('ondemand', 'DELETE');
    const admin = await signToken({ sub: '3', roles: ['user', 'admin'] });
    await refusing.gateway.inject({ method: 'POST', url: '/graphql', headers: { 'content-type': 'application/json', authorization: `Bearer ${admin}` }, payload: { query: 'mutation { adminDeleteMovie(id: "m1") }' } });
    expect((await attempts('ondemand', 'DELETE')) - deletes).toBe(2);
  });
});

describe('a request whose bytes reached the upstream', () => {
  let server: TcpServer;
  let requests = 0;
  let running: RunningGateway;

  beforeAll(async () => {
    // Reads the request, then drops the connection without an answer.
    server = createTcpServer((socket) => {
      socket.once('data', () => {
        requests += 1;
        socket.destroy();
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    running = await startGateway({ ...upstreams.urls, livetv: url }, { JWT_SECRET_KEY: TEST_SECRET }, { graphql: false });
  });
  afterAll(async () => {
    await running.close();
    await new Promise((resolve) => server.close(resolve));
  });

  it('is never sent again, even for GET', async () => {
    const response = await running.gateway.inject({ url: '/livetv/channels', headers: { authorization: `Bearer ${token}` } });
    expect(response.statusCode).toBe(503);
    expect(requests).toBe(1);
  });
});

import type { ServerResponse } from 'node:http';
import { Writable } from 'node:stream';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it, onTestFinished, vi } from 'vitest';
import { loadConfig } from '../../gateway/src/config.js';
import meshLogger, { routeMeshLogsTo } from '../../gateway/src/graphql/library-logs.js';
import { createLogger } from '../../gateway/src/observability/logger.js';
import { redactValue, REDACTED, scrubText } from '../../gateway/src/observability/redact.js';
import { upstreamEnvironment } from '../../shared/upstreams.js';
import { IN_MEMORY } from '../../services/lib/environment.js';
import { startReferenceServices, type ReferenceServices } from '../../services/registry.js';
import { captureLog, startGateway } from '../helpers/gateway.js';
import { graphql } from '../helpers/graphql.js';
import { spawnGateway, type GatewayProcess } from '../helpers/process.js';
import { eventually } from '../helpers/wait.js';
import { useRecordingUpstreams } from '../helpers/recording-upstream.js';
import { useStack } from '../helpers/stack.js';
import { TEST_SECRET, userToken } from '../helpers/tokens.js';

type Line = Record<string, unknown>;

const isAccessLine = (line: Line) => typeof line.route === 'string' && typeof line.durationMs === 'number';

/** A sink for a logger in this process: its lines as text. */
function textSink(): { stream: Writable; text: () => string } {
  const chunks: string[] = [];
  return { stream: new Writable({ write: (chunk: Buffer, _encoding, done) => (chunks.push(chunk.toString()), done()) }), text: () => chunks.join('') };
}

// The gateway's own logger, in this process: what a gateway process writes to stdout (the debug-level
// process below shows that end to end).
describe('the access log (both faces)', () => {
  const log = captureLog('info');
  const fx = useStack({ env: { NODE_ENV: 'production', LOG_LEVEL: 'info', RATE_LIMIT_PER_MINUTE: '30', UPSTREAM_TIMEOUT_MS: '1000' }, logger: log.logger });
  let token: string;

  beforeAll(async () => {
    token = await userToken('1');
  });

  /** The one access line of a request (waiting for it: it is written once the response is over). */
  async function accessLine(requestId: string): Promise<Line> {
    const line = await eventually(`the access line of request ${requestId}`, () => log.lines.find((entry) => isAccessLine(entry) && entry.requestId === requestId));
    expect(log.lines.filter((entry) => isAccessLine(entry) && entry.requestId === requestId)).toHaveLength(1);
    return line;
  }

  it('writes one line for a REST success, with everything an operator needs and no header or query', async () => {
    const response = await request(`${fx.gateway.url}/ondemand/movies?limit=2&access_token=leaked`, { headers: { authorization: `Bearer ${token}`, 'x-request-id': 'rest-ok' } });
    await response.body.text();
    const line = await accessLine('rest-ok');
    expect(line).toMatchObject({
      level: 'info',
      requestId: 'rest-ok',
      method: 'GET',
      route: '/ondemand',
      path: '/ondemand/movies',
      status: 200,
      client: '127.0.0.1',
      user: '1',
      face: 'rest',
      bytesIn: 0,
      upstream: [{ service: 'ondemand', status: 200 }],
      msg: expect.stringMatching(/^GET \/ondemand\/movies 200 [\d.]+ ms$/),
    });
    expect(new Date(line.time as string).toISOString()).toBe(line.time);
    expect(line.durationMs).toBeGreaterThan(0);
    expect(line.bytesOut).toBeGreaterThan(100);
    expect(JSON.stringify(line)).not.toMatch(/leaked|authorization|Bearer/i);
  });

  it('counts the body bytes it read and those it wrote', async () => {
    const body = JSON.stringify({ username: 'alice', password: 'alice-password' });
    const response = await request(`${fx.gateway.url}/auth/login`, { method: 'POST', body, headers: { 'content-type': 'application/json', 'x-request-id': 'rest-login' } });
    const answer = await response.body.text();
    const line = await accessLine('rest-login');
    expect(line).toMatchObject({ method: 'POST', route: '/auth', status: 200, bytesIn: Buffer.byteLength(body) });
    expect(line.bytesOut).toBeGreaterThan(Buffer.byteLength(answer));
    expect(line.user).toBeUndefined();
  });

  it('names the GraphQL operation, its type and every upstream call', async () => {
    fx.upstreams.upstreams.ondemand.behaviour = (_req, res: ServerResponse) => void res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ items: [], total: 0, limit: 2, offset: 0 }));
    const answer = await graphql(fx.gateway.url, 'query Shelf { movies(limit: 2) { total } }', { token, headers: { 'x-request-id': 'gql-ok' } });
    expect(answer.errors).toBeUndefined();
    expect(await accessLine('gql-ok')).toMatchObject({ method: 'POST', route: '/graphql', face: 'graphql', status: 200, user: '1', graphql: { operation: 'Shelf', type: 'query' }, upstream: [{ service: 'ondemand', status: 200 }] });
  });

  it('logs client errors on both faces: a 401 that reached no upstream, a query that does not validate', async () => {
    const refused = await request(`${fx.gateway.url}/users/me`, { headers: { 'x-request-id': 'rest-401' } });
    await refused.body.text();
    expect(await accessLine('rest-401')).toMatchObject({ status: 401, face: 'rest', route: '/users' });
    expect((await accessLine('rest-401')).upstream).toBeUndefined();

    const invalid = await graphql(fx.gateway.url, 'query Broken { nosuchfield }', { headers: { 'x-request-id': 'gql-400' } });
    expect(invalid.status).toBe(400);
    const line = await accessLine('gql-400');
    expect(line).toMatchObject({ status: 400, face: 'graphql' });
    expect(line.graphql).toBeUndefined();
  });

  it('logs upstream failures with the request id: a 503 and a timeout, on both faces', async () => {
    fx.upstreams.upstreams.users.behaviour = (_req, res: ServerResponse) => void res.writeHead(503, { 'content-type': 'application/json' }).end('{"detail":"down"}');
    const failed = await request(`${fx.gateway.url}/users/me`, { headers: { authorization: `Bearer ${token}`, 'x-request-id': 'rest-503' } });
    await failed.body.text();
    expect(await accessLine('rest-503')).toMatchObject({ status: 503, upstream: [{ service: 'users', status: 503 }] });

    fx.upstreams.upstreams.users.behaviour = () => undefined;
    const slow = await graphql(fx.gateway.url, 'query Me { me { id } }', { token, headers: { 'x-request-id': 'gql-504' } });
    expect(slow.errors?.[0]?.extensions.code).toBe('UPSTREAM_TIMEOUT');
    expect(await accessLine('gql-504')).toMatchObject({ status: 200, face: 'graphql', graphql: { operation: 'Me', type: 'query' }, upstream: [{ service: 'users', status: 'timeout' }] });

    const warnings = log.lines.filter((line) => line.level === 'warn' && line.upstream === 'users');
    expect(warnings).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ requestId: 'rest-503', outcome: 503, msg: expect.stringMatching(/user management service failed a call/) }),
        expect.objectContaining({ requestId: 'gql-504', outcome: 'timeout', operation: 'me' }),
      ]),
    );
  });

  it('logs every 429 in the access log and the first refusal of a bucket once, with its request id', async () => {
    const flooder = await userToken('flood');
    // The limiter reads Date.now: it stands still until the test ends, so a slow run refills the bucket by nothing.
    vi.useFakeTimers({ toFake: ['Date'] });
    onTestFinished(() => void vi.useRealTimers());
    const statuses: number[] = [];
    for (let i = 0; i < 34; i++) {
      const response = await request(`${fx.gateway.url}/ondemand/movies`, { headers: { authorization: `Bearer ${flooder}`, 'x-request-id': `flood-${i}` } });
      await response.body.text();
      statuses.push(response.statusCode);
    }
    const refusedIds = statuses.flatMap((status, i) => (status === 429 ? [`flood-${i}`] : []));
    expect(refusedIds.length).toBeGreaterThanOrEqual(3);
    for (const id of refusedIds) expect(await accessLine(id)).toMatchObject({ status: 429, user: 'flood' });
    const reached = log.lines.filter((line) => line.msg === 'rate limit reached' && line.bucket === 'user:flood');
    expect(reached).toEqual([expect.objectContaining({ level: 'info', requestId: refusedIds[0], limit: 30 })]);
  });

  it('logs a request the client abandoned as 499, incomplete, on both faces', async () => {
    for (const face of ['rest', 'graphql'] as const) {
      fx.upstreams.reset();
      fx.upstreams.upstreams.ondemand.behaviour = () => undefined;
      const abort = new AbortController();
      const requestId = `${face}-abandoned`;
      const sent =
        face === 'rest'
          ? request(`${fx.gateway.url}/ondemand/movies`, { headers: { authorization: `Bearer ${token}`, 'x-request-id': requestId }, signal: abort.signal })
          : request(`${fx.gateway.url}/graphql`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-request-id': requestId }, body: JSON.stringify({ query: '{ movies { total } }' }), signal: abort.signal });
      await eventually('the request at the upstream', () => fx.upstreams.upstreams.ondemand.requests.length > 0);
      abort.abort();
      await expect(sent).rejects.toThrow();
      expect(await accessLine(requestId)).toMatchObject({ status: 499, incomplete: true, face, upstream: [{ service: 'ondemand', status: 'aborted' }] });
    }
  });

  it('never writes a token, a password, a cookie or a body', async () => {
    const headers = { authorization: `Bearer ${token}`, cookie: 'session=cookie-value-xyz', 'content-type': 'application/json' };
    await (await request(`${fx.gateway.url}/auth/login`, { method: 'POST', headers: { ...headers, 'x-request-id': 'secrets-rest' }, body: '{"username":"alice","password":"alice-password"}' })).body.text();
    await graphql(fx.gateway.url, 'mutation { login(username: "alice", password: "alice-password") { access_token } }', { headers: { ...headers, 'x-request-id': 'secrets-graphql' } });
    await Promise.all([accessLine('secrets-rest'), accessLine('secrets-graphql')]);
    const text = JSON.stringify(log.lines);
    expect(text).not.toContain(token);
    expect(text).not.toContain('alice-password');
    expect(text).not.toContain('cookie-value-xyz');
    expect(text).not.toMatch(/"(authorization|cookie|password)"/i);
  });
});

describe('ACCESS_LOG and LOG_FORMAT', () => {
  const upstreams = useRecordingUpstreams();

  it('ACCESS_LOG=false: no access line, failures still logged', async () => {
    const log = captureLog('info');
    const running = await startGateway(upstreams.urls, { JWT_SECRET_KEY: TEST_SECRET, ACCESS_LOG: 'false', LOG_LEVEL: 'info' }, { logger: log.logger });
    try {
      upstreams.upstreams.ondemand.behaviour = (_req, res: ServerResponse) => void res.writeHead(502).end();
      await (await request(`${running.url}/ondemand/movies`, { headers: { authorization: `Bearer ${await userToken()}`, 'x-request-id': 'quiet' } })).body.text();
      await (await request(`${running.url}/health`)).body.text();
      expect(log.lines.filter(isAccessLine)).toEqual([]);
      expect(log.lines).toEqual([expect.objectContaining({ requestId: 'quiet', upstream: 'ondemand', outcome: 502 })]);
      expect(running.gateway.pipeline.steps).not.toContain('onRequest:access-log');
    } finally {
      await running.close();
    }
    // On by default, and only when its level is on.
    const logging = await startGateway(upstreams.urls, { LOG_LEVEL: 'info' }, { logger: captureLog('info').logger });
    const silent = await startGateway(upstreams.urls, { LOG_LEVEL: 'warn' }, { logger: captureLog('warn').logger });
    expect(logging.gateway.pipeline.steps).toContain('onRequest:access-log');
    expect(silent.gateway.pipeline.steps).not.toContain('onRequest:access-log');
    await Promise.all([logging.close(), silent.close()]);
  });

  it('is JSON in production and readable lines in development, LOG_FORMAT overriding either', () => {
    expect(loadConfig({ NODE_ENV: 'production', JWT_SECRET_KEY: TEST_SECRET }).logFormat).toBe('json');
    expect(loadConfig({ NODE_ENV: 'development' }).logFormat).toBe('pretty');
    expect(loadConfig({ NODE_ENV: 'development', LOG_FORMAT: 'json' }).logFormat).toBe('json');
    expect(() => loadConfig({ LOG_FORMAT: 'xml' })).toThrow(/LOG_FORMAT must be one of json, pretty/);
    expect(() => loadConfig({ ACCESS_LOG: 'no' })).toThrow(/ACCESS_LOG must be one of true, false/);
  });

  it('prints a readable line per entry with the pretty format, redacted like JSON', async () => {
    const sink = textSink();
    const logger = createLogger({ level: 'info', format: 'pretty', destination: sink.stream });
    logger.info({ requestId: 'r1', headers: { authorization: 'Bearer abc.def.ghi' } }, 'GET /users/me 200 1.2 ms');
    logger.flush();
    await eventually('a whole line from the pretty printer', () => sink.text().includes('\n'));
    const [line] = sink.text().split('\n');
    expect(line).toMatch(/^\[\d\d:\d\d:\d\d\.\d{3}\] INFO: GET \/users\/me 200 1\.2 ms \{.*"requestId":"r1"/);
    expect(line).toContain(REDACTED);
    expect(line).not.toContain('abc.def.ghi');
  });
});

describe('redaction', () => {
  it('replaces members named like secrets at any depth, in arrays, maps and errors, and secrets inside text', () => {
    const jwt = 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl';
    const redacted = JSON.stringify(
      redactValue({
        deep: { deeper: [{ password: 'p1', accessToken: 'a1', client_secret: 's1', 'x-api-key': 'k1', Cookie: 'c1', refresh_token: 'r1' }] },
        headers: new Map([['authorization', 'Basic dXNlcjpwYXNz']]),
        body: '{"username":"bob","password":"p2","nested":{"token":"t2"}}',
        escaped: '"{\\"password\\":\\"p3\\"}"',
        text: `sent Bearer ${jwt} and Basic dXNlcjpwYXNz`,
        error: Object.assign(new Error(`failed with ${jwt}`), { code: 'E1' }),
      }),
    );
    for (const secret of ['p1', 'a1', 's1', 'k1', 'c1', 'r1', 'dXNlcjpwYXNz', 'p2', 't2', 'p3', jwt]) expect(redacted).not.toContain(`${secret}`);
    expect(redacted).toContain('bob');
    expect(redacted).toContain('"code":"E1"');
  });

  it('survives what libraries log: cycles, depth, functions, buffers', () => {
    const cyclic: Record<string, unknown> = { name: 'a' };
    cyclic.self = cyclic;
    let deep: Record<string, unknown> = { leaf: 1 };
    for (let i = 0; i < 20; i++) deep = { deep };
    expect(redactValue({ cyclic, deep, fn: () => 1, bytes: Buffer.from('secret') })).toMatchObject({ cyclic: { name: 'a', self: '[circular]' }, bytes: '[6 bytes]' });
    expect(JSON.stringify(redactValue(deep))).toContain('[too deep]');
  });

  it('leaves ordinary text alone', () => {
    expect(scrubText('GET /ondemand/movies 200 3.1 ms')).toBe('GET /ondemand/movies 200 3.1 ms');
  });

  it("does not even build Mesh's debug arguments when debug is off", () => {
    const sink = textSink();
    routeMeshLogsTo(createLogger({ level: 'info', destination: sink.stream }));
    let built = 0;
    meshLogger.debug(() => {
      built += 1;
      return { password: 'never' };
    });
    expect(built).toBe(0);
    routeMeshLogsTo(createLogger({ level: 'debug', destination: sink.stream }));
    meshLogger.child('Query.me').debug('Called with', () => ({ args: { input: { password: 'hunter2' } } }));
    expect(built).toBe(0);
    expect(sink.text()).toContain('Called with {\\"args\\":{\\"input\\":{\\"password\\":\\"[redacted]\\"}}}');
    expect(sink.text()).not.toContain('hunter2');
  });
});

describe('no secret in any log line at debug, through both faces (a gateway process, the reference services)', () => {
  let services: ReferenceServices;
  let gateway: GatewayProcess;

  beforeAll(async () => {
    services = await startReferenceServices({ anyPorts: true, env: { JWT_SECRET_KEY: TEST_SECRET, LOG_LEVEL: 'silent', DATA_DIR: IN_MEMORY } });
    // Production, from the build, as deployed (at debug, so that Mesh would say if it regenerated anything).
    gateway = await spawnGateway({ NODE_ENV: 'production', JWT_SECRET_KEY: TEST_SECRET, LOG_LEVEL: 'debug', LOG_FORMAT: 'json', RATE_LIMIT_PER_MINUTE: '0', REGISTRATIONS_PER_HOUR: '0', ...upstreamEnvironment(services.urls) });
  });
  afterAll(async () => {
    await gateway.stop();
    await services.close();
  });

  it('serves from the build in production with the prebuilt Mesh artifacts: nothing regenerated, nothing said about them', async () => {
    expect(await graphql(gateway.url, '{ plans { id } }')).toMatchObject({ status: 200, data: { plans: [{ id: 'basic' }, { id: 'premium' }] } });
    expect(gateway.stdout().join('\n')).not.toMatch(/stale|Generating GraphQL schema/);
  });

  it('logs in, refreshes, registers and reads through REST and GraphQL: only [redacted] shows', async () => {
    const secrets: string[] = ['alice-password', 'new-user-password-1', 'new-user-password-2', 'cookie-value-xyz', 'api-key-value-xyz'];
    const extra = { cookie: `session=cookie-value-xyz`, 'x-api-key': 'api-key-value-xyz' };
    const post = async (path: string, body: unknown, headers: Record<string, string> = {}) => {
      const response = await request(`${gateway.url}${path}`, { method: 'POST', body: JSON.stringify(body), headers: { 'content-type': 'application/json', ...extra, ...headers } });
      return (await response.body.json()) as Record<string, string>;
    };
    const restLogin = await post('/auth/login', { username: 'alice', password: 'alice-password' });
    const restRefresh = await post('/auth/refresh', { refresh_token: restLogin.refresh_token });
    await post('/auth/register', { username: 'logged1', email: 'logged1@example.com', password: 'new-user-password-1' });
    const gqlLogin = await graphql(gateway.url, 'mutation { login(username: "alice", password: "alice-password") { access_token refresh_token } }', { headers: extra });
    const tokens = gqlLogin.data?.login as Record<string, string>;
    await graphql(gateway.url, 'mutation { register(username: "logged2", email: "logged2@example.com", password: "new-user-password-2") { id } }', { headers: extra });
    const me = await graphql(gateway.url, '{ me { id } }', { token: tokens.access_token, headers: extra });
    expect(me.data).toEqual({ me: { id: '1' } });
    await (await request(`${gateway.url}/users/me`, { headers: { authorization: `Bearer ${restLogin.access_token}`, ...extra } })).body.text();

    for (const value of [restLogin.access_token, restLogin.refresh_token, restRefresh.access_token, restRefresh.refresh_token, tokens.access_token, tokens.refresh_token]) {
      expect(typeof value).toBe('string');
      secrets.push(value as string);
    }

    const lines = await eventually('the process’s log lines about the /users requests', () => {
      const all = gateway.stdout();
      return all.some((line) => line.includes('"requestId"') && line.includes('"/users"')) && all;
    });
    // Debug was really on: Mesh's own lines about the upstream calls are there, redacted.
    expect(lines.some((line) => line.includes('"component":"mesh"') && line.includes('Fetching'))).toBe(true);
    expect(lines.some((line) => line.includes(REDACTED))).toBe(true);
    for (const line of lines) {
      for (const secret of secrets) expect(line, `a log line holds a secret: ${line.slice(0, 300)}`).not.toContain(secret);
      expect(line).not.toMatch(/Bearer eyJ/);
    }
  });
});

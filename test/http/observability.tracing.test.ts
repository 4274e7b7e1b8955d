import type { IncomingMessage, ServerResponse } from 'node:http';
import { request } from 'undici';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { upstreamEnvironment } from '../../shared/upstreams.js';
import { captureLog } from '../helpers/gateway.js';
import { useStack } from '../helpers/stack.js';
import { graphql } from '../helpers/graphql.js';
import { OtlpReceiver, type ReceivedSpan } from '../helpers/otlp-receiver.js';
import { spawnGateway, type GatewayProcess } from '../helpers/process.js';
import { eventually } from '../helpers/wait.js';
import { startRecordingUpstreams, type RecordingUpstreams } from '../helpers/recording-upstream.js';
import { TEST_SECRET, userToken } from '../helpers/tokens.js';

const SERVER = 2;
const CLIENT = 3;
const CLIENT_TRACE = '0af7651916cd43dd8448eb211c80319c';
const CLIENT_SPAN = 'b7ad6b7169203331';
const CLIENT_TRACEPARENT = `00-${CLIENT_TRACE}-${CLIENT_SPAN}-01`;

/** Answers the two calls a shelf with entitlements makes: a page of movies, their entitlements in one batch. */
function catalogue(upstreams: RecordingUpstreams): void {
  const json = (res: ServerResponse, body: unknown) => void res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(body));
  upstreams.upstreams.ondemand.behaviour = (_req: IncomingMessage, res: ServerResponse) =>
    json(res, { items: ['m1', 'm2'].map((id) => ({ id, title: id, genres: [], free: true })), total: 2, limit: 2, offset: 0 });
  upstreams.upstreams.rights.behaviour = (_req: IncomingMessage, res: ServerResponse) =>
    json(res, { items: ['m1', 'm2'].map((id) => ({ contentId: `movie:${id}`, canPlay: true, reason: 'free' })) });
}

const SHELF = 'query Shelf { movies(limit: 2) { items { id entitlement { canPlay } } } }';

/** The traceparent an upstream saw on its last request. */
const seenBy = (upstreams: RecordingUpstreams, name: 'ondemand' | 'rights' | 'users') => upstreams.upstreams[name].requests.at(-1)?.headers.traceparent;

interface TracedSetup {
  readonly receiver: OtlpReceiver;
  readonly upstreams: RecordingUpstreams;
  readonly gateway: GatewayProcess;
}

/** For a describe block: an OTLP receiver, recording upstreams, and a gateway process exporting to the receiver. */
function useTracedGateway(env: NodeJS.ProcessEnv): () => TracedSetup {
  let setup: TracedSetup | undefined;
  beforeAll(async () => {
    const receiver = await OtlpReceiver.start();
    const upstreams = await startRecordingUpstreams();
    const gateway = await spawnGateway({
      NODE_ENV: 'production',
      JWT_SECRET_KEY: TEST_SECRET,
      RATE_LIMIT_PER_MINUTE: '0',
      OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
      OTEL_BSP_SCHEDULE_DELAY: '50',
      ...env,
      ...upstreamEnvironment(upstreams.urls),
    });
    setup = { receiver, upstreams, gateway };
  });
  afterAll(async () => {
    await setup?.gateway.stop();
    await setup?.upstreams.close();
    await setup?.receiver.close();
  });
  return () => setup as TracedSetup;
}

describe('OpenTelemetry traces from a gateway process (OTLP/HTTP JSON to a real receiver)', () => {
  const setup = useTracedGateway({ LOG_LEVEL: 'info', OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json', OTEL_SERVICE_NAME: 'gateway-under-test' });
  let receiver: OtlpReceiver;
  let upstreams: RecordingUpstreams;
  let gateway: GatewayProcess;
  let token: string;

  beforeAll(async () => {
    ({ receiver, upstreams, gateway } = setup());
    token = await userToken('1');
  });
  beforeEach(() => {
    upstreams.reset();
    catalogue(upstreams);
  });

  /** The gateway's server span of a request (by its request id), once exported, and its trace. */
  async function traceOf(requestId: string): Promise<{ server: ReceivedSpan; spans: ReceivedSpan[] }> {
    const server = await eventually(`the gateway's server span of request ${requestId} at the receiver`, () => receiver.spans.find((span) => span.kind === SERVER && span.attributes['gateway.request_id'] === requestId));
    return { server, spans: receiver.trace(server.traceId) };
  }

  const childrenOf = (spans: ReceivedSpan[], parent: ReceivedSpan) => spans.filter((span) => span.parentSpanId === parent.spanId);

  it('REST: continues a trusted client trace, a client span per upstream call, its context sent to the upstream', async () => {
    const response = await request(`${gateway.url}/ondemand/movies?limit=2`, { headers: { authorization: `Bearer ${token}`, traceparent: CLIENT_TRACEPARENT, tracestate: 'vendor=1', 'x-request-id': 'traced-rest' } });
    expect(response.statusCode).toBe(200);
    await response.body.text();
    const { server, spans } = await traceOf('traced-rest');
    expect(server).toMatchObject({ service: 'gateway-under-test', traceId: CLIENT_TRACE, parentSpanId: CLIENT_SPAN, name: 'GET /ondemand' });
    expect(server.attributes).toMatchObject({ 'http.request.method': 'GET', 'http.route': '/ondemand', 'http.response.status_code': 200, 'url.path': '/ondemand/movies', 'user.id': '1' });
    const [call] = childrenOf(spans, server);
    expect(call).toMatchObject({ kind: CLIENT, name: 'GET' });
    expect(call?.attributes).toMatchObject({ 'peer.service': 'ondemand', 'http.response.status_code': 200, 'server.address': '127.0.0.1' });
    expect(seenBy(upstreams, 'ondemand')).toBe(`00-${CLIENT_TRACE}-${call?.spanId}-01`);
    expect(upstreams.upstreams.ondemand.requests.at(-1)?.headers.tracestate).toBe('vendor=1');
    const line = await eventually('the access line of request traced-rest', () => gateway.logLines().find((entry) => entry.requestId === 'traced-rest' && entry.route));
    expect(line.traceId).toBe(CLIENT_TRACE);
  });

  it('GraphQL: parse, validate and execute spans, one span per DataLoader batch, the upstream calls beneath', async () => {
    const answer = await graphql(gateway.url, SHELF, { token, headers: { 'x-request-id': 'traced-graphql' } });
    expect(answer.data).toEqual({ movies: { items: [{ id: 'm1', entitlement: { canPlay: true } }, { id: 'm2', entitlement: { canPlay: true } }] } });
    const { server, spans } = await traceOf('traced-graphql');
    // No client context: the gateway's span is the root of a new trace.
    expect(server).toMatchObject({ name: 'POST /graphql', parentSpanId: '' });
    expect(server.attributes).toMatchObject({ 'graphql.operation.name': 'Shelf', 'graphql.operation.type': 'query', 'http.response.status_code': 200 });
    const steps = childrenOf(spans, server);
    expect(steps.map((span) => span.name).sort()).toEqual(['graphql.execute', 'graphql.parse', 'graphql.validate']);
    const execute = steps.find((span) => span.name === 'graphql.execute') as ReceivedSpan;
    const underExecute = childrenOf(spans, execute);
    const moviesCall = underExecute.find((span) => span.kind === CLIENT);
    expect(moviesCall).toMatchObject({ name: 'GET /ondemand/movies' });
    const batch = underExecute.find((span) => span.name === 'graphql.batch entitlements');
    expect(batch?.attributes['graphql.batch.size']).toBe(2);
    const [entitlementsCall, ...more] = childrenOf(spans, batch as ReceivedSpan);
    expect(more).toEqual([]);
    expect(entitlementsCall).toMatchObject({ kind: CLIENT, name: 'GET /subscriptions/entitlements' });
    expect(seenBy(upstreams, 'ondemand')).toBe(`00-${server.traceId}-${moviesCall?.spanId}-01`);
    expect(seenBy(upstreams, 'rights')).toBe(`00-${server.traceId}-${entitlementsCall?.spanId}-01`);
  });

  it('puts the trace id beside the request id in error responses, on both faces', async () => {
    const problem = await request(`${gateway.url}/users/me`, { headers: { 'x-request-id': 'traced-401' } });
    const body = (await problem.body.json()) as { requestId: string; traceId: string };
    const { server: restServer } = await traceOf('traced-401');
    expect(body).toMatchObject({ requestId: 'traced-401', traceId: restServer.traceId });
    expect(restServer.attributes['http.response.status_code']).toBe(401);

    upstreams.upstreams.users.behaviour = (_req, res) => void res.writeHead(503).end();
    const answer = await graphql(gateway.url, '{ me { id } }', { token, headers: { 'x-request-id': 'traced-503' } });
    const { server: graphqlServer, spans } = await traceOf('traced-503');
    expect(answer.errors?.[0]?.extensions).toMatchObject({ code: 'UPSTREAM_UNAVAILABLE', requestId: 'traced-503', traceId: graphqlServer.traceId });
    const failed = spans.find((span) => span.kind === CLIENT);
    expect(failed?.status.code).toBe(2);
    expect(failed?.attributes['error.type']).toBe('503');
  });

  it('does not trace probes and scrapes', async () => {
    await (await request(`${gateway.url}/health`, { headers: { 'x-request-id': 'probe' } })).body.text();
    await (await request(`${gateway.url}/metrics`)).body.text();
    const marker = await graphql(gateway.url, '{ movies(limit: 2) { total } }', { headers: { 'x-request-id': 'after-probe' } });
    expect(marker.status).toBe(200);
    await traceOf('after-probe');
    expect(receiver.spans.filter((span) => span.kind === SERVER && ['/health', '/metrics'].includes(String(span.attributes['url.path'])))).toEqual([]);
  });
});

describe('OTLP/HTTP protobuf (the default protocol) and an untrusted client context', () => {
  const setup = useTracedGateway({ LOG_LEVEL: 'warn', TRACE_TRUST_CLIENT: 'false' });
  let receiver: OtlpReceiver;
  let upstreams: RecordingUpstreams;
  let gateway: GatewayProcess;

  beforeAll(() => {
    ({ receiver, upstreams, gateway } = setup());
  });

  it('starts a new trace, links the client one, and exports protobuf', async () => {
    const response = await request(`${gateway.url}/ondemand/movies`, { headers: { authorization: `Bearer ${await userToken()}`, traceparent: CLIENT_TRACEPARENT } });
    await response.body.text();
    const seen = seenBy(upstreams, 'ondemand') ?? '';
    const [, traceId = '', spanId = ''] = /^00-([0-9a-f]{32})-([0-9a-f]{16})-01$/.exec(String(seen)) ?? [];
    expect(traceId).not.toBe('');
    expect(traceId).not.toBe(CLIENT_TRACE);
    const exported = await eventually(`the export holding span ${spanId}`, () => receiver.exports.find((received) => received.body.includes(Buffer.from(spanId, 'hex'))));
    expect(exported.contentType).toBe('application/x-protobuf');
    // The new trace's spans, and the client's context as a link of the server span.
    expect(exported.body.includes(Buffer.from(traceId, 'hex'))).toBe(true);
    expect(exported.body.includes(Buffer.from(CLIENT_TRACE, 'hex'))).toBe(true);
    expect(exported.body.includes(Buffer.from('tv-gateway'))).toBe(true);
  });
});

// The whole stack continuing one trace (gateway → rights → on-demand) is checked on `npm start` (start.test.ts).

describe('trace context without tracing (no SDK: the client context passed on as it came)', () => {
  const log = captureLog('info');
  // The first trusts client trace contexts (the default), the second does not.
  const fx = useStack({ gateways: [{}, { TRACE_TRUST_CLIENT: 'false' }], logger: log.logger });

  it('passes a trusted traceparent and tracestate on unchanged, on both faces, and reports its trace id', async () => {
    const headers = { authorization: `Bearer ${await userToken()}`, traceparent: CLIENT_TRACEPARENT, tracestate: 'vendor=1', 'x-request-id': 'untraced' };
    await (await request(`${fx.gateway.url}/ondemand/movies`, { headers })).body.text();
    expect(fx.upstreams.upstreams.ondemand.requests[0]?.headers).toMatchObject({ traceparent: CLIENT_TRACEPARENT, tracestate: 'vendor=1' });
    fx.upstreams.upstreams.users.behaviour = (_req, res) => void res.writeHead(503).end();
    const answer = await graphql(fx.gateway.url, '{ me { id } }', { headers });
    expect(fx.upstreams.upstreams.users.requests[0]?.headers.traceparent).toBe(CLIENT_TRACEPARENT);
    expect(answer.errors?.[0]?.extensions).toMatchObject({ traceId: CLIENT_TRACE });
    const problem = (await (await request(`${fx.gateway.url}/nowhere`, { headers })).body.json()) as Record<string, unknown>;
    expect(problem).toMatchObject({ status: 404, requestId: 'untraced', traceId: CLIENT_TRACE });
    expect(log.lines.filter((line) => line.requestId === 'untraced' && line.route).every((line) => line.traceId === CLIENT_TRACE)).toBe(true);
  });

  it('drops what is not a valid trace context, and everything when the client is not trusted', async () => {
    const token = await userToken();
    const invalid = [
      `00-${'0'.repeat(32)}-${CLIENT_SPAN}-01`,
      `00-${CLIENT_TRACE}-${'0'.repeat(16)}-01`,
      `00-${CLIENT_TRACE.toUpperCase()}-${CLIENT_SPAN}-01`,
      `ff-${CLIENT_TRACE}-${CLIENT_SPAN}-01`,
      `00-${CLIENT_TRACE}-${CLIENT_SPAN}-01-extra`,
      'not a traceparent',
    ];
    for (const traceparent of invalid) {
      const response = await request(`${fx.gateway.url}/ondemand/movies`, { headers: { authorization: `Bearer ${token}`, traceparent, tracestate: 'vendor=1' } });
      const problemOrData = await response.body.text();
      expect(problemOrData).not.toContain('traceId');
    }
    await (await request(`${fx.gateway.url}/ondemand/movies`, { headers: { authorization: `Bearer ${token}`, tracestate: 'vendor=1' } })).body.text();
    await (await request(`${fx.gateways[1]?.url ?? ''}/ondemand/movies`, { headers: { authorization: `Bearer ${token}`, traceparent: CLIENT_TRACEPARENT, tracestate: 'vendor=1' } })).body.text();
    await graphql(fx.gateways[1]?.url ?? '', '{ me { id } }', { token, headers: { traceparent: CLIENT_TRACEPARENT, tracestate: 'vendor=1' } });
    expect(fx.upstreams.upstreams.users.requests).toHaveLength(1);
    expect(fx.upstreams.upstreams.users.requests[0]?.headers).not.toHaveProperty('traceparent');
    expect(fx.upstreams.upstreams.users.requests[0]?.headers).not.toHaveProperty('tracestate');
    const seen = fx.upstreams.upstreams.ondemand.requests.map((recorded) => [recorded.headers.traceparent, recorded.headers.tracestate]);
    expect(seen).toHaveLength(invalid.length + 2);
    expect(seen.every(([traceparent, tracestate]) => traceparent === undefined && tracestate === undefined)).toBe(true);
    const refused = (await (await request(`${fx.gateways[1]?.url ?? ''}/nowhere`, { headers: { traceparent: CLIENT_TRACEPARENT } })).body.json()) as Record<string, unknown>;
    expect(refused.traceId).toBeUndefined();
  });

  it('accepts a future version of traceparent by its first four fields', async () => {
    await (await request(`${fx.gateway.url}/ondemand/movies`, { headers: { authorization: `Bearer ${await userToken()}`, traceparent: `01-${CLIENT_TRACE}-${CLIENT_SPAN}-01-future` } })).body.text();
    expect(fx.upstreams.upstreams.ondemand.requests[0]?.headers.traceparent).toBe(CLIENT_TRACEPARENT);
  });
});

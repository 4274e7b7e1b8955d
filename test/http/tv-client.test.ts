import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, expectTypeOf, it } from 'vitest';
import { createTvClient, createTvSubscriptions, GatewayGraphQLError, gatewayUrl } from '../../examples/tv-app/client.js';
import type { ResultOf } from '../../examples/tv-app/graphql.js';
import { HomeScreen, Login, OnAir } from '../../examples/tv-app/operations.js';
import { sample } from '../helpers/metrics.js';
import { useStack } from '../helpers/stack.js';
import { eventually, within } from '../helpers/wait.js';

type OnAirUpdate = ResultOf<typeof OnAir>['nowPlaying'];

/** Reads `updates` until each of `channelIds` has `count` of them; each channel's, in the order they came. */
async function untilEach(updates: AsyncGenerator<ResultOf<typeof OnAir>>, channelIds: readonly string[], count: number, what: string): Promise<Map<string, OnAirUpdate[]>> {
  const byChannel = new Map<string, OnAirUpdate[]>(channelIds.map((id) => [id, []]));
  const short = () => channelIds.some((id) => (byChannel.get(id)?.length ?? 0) < count);
  while (short()) {
    const next = await within(() => `${what} (so far: ${JSON.stringify(Object.fromEntries(byChannel))})`, updates.next());
    if (next.done) throw new Error(`the subscription ended before ${what}`);
    byChannel.get(next.value.nowPlaying.channel.id)?.push(next.value.nowPlaying);
  }
  return byChannel;
}

describe('the typed client example', () => {
  it('finds the gateway by the gateway’s own convention: GATEWAY_URL, else HOST and PORT', () => {
    expect(gatewayUrl({})).toBe('http://127.0.0.1:4000');
    expect(gatewayUrl({ PORT: '8080' })).toBe('http://127.0.0.1:8080');
    expect(gatewayUrl({ HOST: '0.0.0.0', PORT: '8080' })).toBe('http://127.0.0.1:8080');
    expect(gatewayUrl({ HOST: 'gateway.internal', PORT: '4000' })).toBe('http://gateway.internal:4000');
    expect(gatewayUrl({ GATEWAY_URL: 'https://tv-api.example.com/', PORT: '8080' })).toBe('https://tv-api.example.com');
  });

  describe('against answers that are not data', () => {
    let server: Server;
    let answer: (res: ServerResponse) => void;
    let url: string;
    beforeAll(async () => {
      server = createServer((req, res) => {
        req.resume();
        req.on('end', () => answer(res));
      });
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    });
    afterAll(() => new Promise((resolve) => server.close(resolve)));

    const failure = async () => (await createTvClient(url)(HomeScreen, { limit: 1 }).catch((error: unknown) => error)) as GatewayGraphQLError;

    it('surfaces a GraphQL-shaped 429 with its code, request id and Retry-After', async () => {
      answer = (res) =>
        res.writeHead(429, { 'content-type': 'application/json', 'retry-after': '7' }).end('{"errors":[{"message":"Too many requests: try again in 7 s","extensions":{"code":"RATE_LIMITED","requestId":"r-1"}}]}');
      const error = await failure();
      expect(error).toBeInstanceOf(GatewayGraphQLError);
      expect([error.code, error.requestId, error.status, error.retryAfterSeconds, error.message]).toEqual(['RATE_LIMITED', 'r-1', 429, 7, 'RATE_LIMITED: Too many requests: try again in 7 s']);
    });

    it('surfaces a problem+json answer (a proxy in front, say) with its code instead of an empty error', async () => {
      answer = (res) =>
        res.writeHead(503, { 'content-type': 'application/problem+json', 'retry-after': '2' }).end('{"type":"about:blank","title":"Service Unavailable","status":503,"code":"UPSTREAM_UNAVAILABLE","detail":"The service is unavailable","requestId":"r-2"}');
      const error = await failure();
      expect([error.code, error.requestId, error.status, error.retryAfterSeconds, error.message]).toEqual(['UPSTREAM_UNAVAILABLE', 'r-2', 503, 2, 'UPSTREAM_UNAVAILABLE: The service is unavailable']);
    });

    it('names the HTTP status of anything else (an HTML error page)', async () => {
      answer = (res) => res.writeHead(502, { 'content-type': 'text/html' }).end('<h1>Bad Gateway</h1>');
      const error = await failure();
      expect([error.code, error.status, error.retryAfterSeconds]).toEqual(['HTTP_502', 502, undefined]);
    });

    it('does not subscribe again after a refusal (a 4xx), and surfaces it with its code and Retry-After', async () => {
      let requests = 0;
      answer = (res) => {
        requests++;
        res.writeHead(429, { 'content-type': 'application/json', 'retry-after': '3' }).end('{"errors":[{"message":"At most 20 open subscriptions per client: end one first","extensions":{"code":"RATE_LIMITED","requestId":"r-3"}}]}');
      };
      // graphql-sse would try five more times, seconds apart, on its own.
      const updates = createTvSubscriptions(url)(OnAir, { channelIds: ['c1'] });
      const error = (await within('the refusal', updates.next().catch((failed: unknown) => failed))) as GatewayGraphQLError;
      expect(error).toBeInstanceOf(GatewayGraphQLError);
      expect([error.code, error.requestId, error.status, error.retryAfterSeconds, requests]).toEqual(['RATE_LIMITED', 'r-3', 429, 3, 1]);
    });

    it('subscribes again when the gateway answers 503 (a replica shutting down), and yields what the next one streams', async () => {
      let requests = 0;
      answer = (res) => {
        if (++requests === 1) return void res.writeHead(503, { 'content-type': 'application/json' }).end('{"errors":[{"message":"The gateway is shutting down: subscribe again","extensions":{"code":"UPSTREAM_UNAVAILABLE"}}]}');
        const update = { nowPlaying: { channel: { id: 'c1', number: 1, name: 'One' }, program: null } };
        res.writeHead(200, { 'content-type': 'text/event-stream' }).end(`event: next\ndata: ${JSON.stringify({ data: update })}\n\nevent: complete\ndata:\n\n`);
      };
      const updates = createTvSubscriptions(url, undefined, { retryAttempts: 1 })(OnAir, { channelIds: ['c1'] });
      // After graphql-sse's first backoff: 1.3 to 4 s.
      expect(await within('the update after subscribing again', updates.next())).toEqual({ done: false, value: { nowPlaying: { channel: { id: 'c1', number: 1, name: 'One' }, program: null } } });
      expect(await within('the end of the stream', updates.next())).toEqual({ done: true, value: undefined });
      expect(requests).toBe(2);
    });

    it('subscribes again when a stream drops without completing (its replica went away), and goes on yielding', async () => {
      let requests = 0;
      const update = (name: string) => `event: next\ndata: ${JSON.stringify({ data: { nowPlaying: { channel: { id: 'c1', number: 1, name }, program: null } } })}\n\n`;
      answer = (res) => {
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        // The first stream ends with no `complete`, as a gateway shutting down ends them.
        if (++requests === 1) res.end(update('One'));
        else res.end(`${update('One again')}event: complete\ndata:\n\n`);
      };
      const updates = createTvSubscriptions(url)(OnAir, { channelIds: ['c1'] });
      const names: string[] = [];
      await within(
        () => `the updates of both streams, and the end (came: ${names.join(', ')})`,
        (async () => {
          for await (const { nowPlaying } of updates) names.push(nowPlaying.channel.name);
        })(),
      );
      expect([names, requests]).toEqual([['One', 'One again'], 2]);
    });
  });

  describe('its typed nowPlaying subscription, against the reference services (programmes 2 s long)', () => {
    const stack = useStack({ upstreams: 'reference', serviceEnv: { LIVETV_SLOT_SECONDS: '2' } });

    it('gets each channel’s programme on air at once, then the next one at the boundary', async () => {
      const session: { token?: string } = {};
      session.token = (await createTvClient(stack.gateway.url)(Login, { username: 'alice', password: 'alice-password' })).login.access_token;
      const updates = createTvSubscriptions(stack.gateway.url, () => session.token)(OnAir, { channelIds: ['c1', 'c2'] });
      try {
        const first = await untilEach(updates, ['c1', 'c2'], 1, 'the programme on air on c1 and c2');
        const now = first.get('c1')?.[0];
        expectTypeOf(now).toEqualTypeOf<{ channel: { id: string; number: number; name: string }; program: { id: string; title: string; start: string; end: string } | null } | undefined>();
        expect(now?.channel).toMatchObject({ id: 'c1', number: expect.any(Number), name: expect.any(String) });
        expect(Date.parse(now?.program?.end ?? '') - Date.parse(now?.program?.start ?? '')).toBe(2000);
        // The boundary: both channels' next programmes, each starting as the one before ends.
        const both = await untilEach(updates, ['c1', 'c2'], 2, 'the programmes after the boundary');
        for (const id of ['c1', 'c2']) {
          const [before, after] = both.get(id) ?? [];
          expect(after?.channel.id).toBe(id);
          expect(after?.program?.id).not.toBe(before?.program?.id);
          expect(after?.program?.start).toBe(before?.program?.end);
        }
      } finally {
        await updates.return();
      }
    });

    it('ends quietly when its signal aborts, and the gateway sees the stream end', async () => {
      const openStreams = async () => sample(await (await fetch(`${stack.gateway.url}/metrics`)).text(), 'gateway_graphql_subscriptions', { transport: 'sse' });
      const leaving = new AbortController();
      const updates = createTvSubscriptions(stack.gateway.url)(OnAir, { channelIds: ['c3'] }, leaving.signal);
      expect((await within('the programme on air on c3', updates.next())).value?.nowPlaying.channel.id).toBe('c3');
      expect(await openStreams()).toBe(1);
      leaving.abort();
      expect(await within('the end of the loop', updates.next())).toEqual({ done: true, value: undefined });
      await eventually('the gateway to see the stream end', async () => (await openStreams()) === 0);
    });

    it.each<[string, string | undefined, string[], [string, number]]>([
      ['more channels than one subscription may follow', undefined, Array.from({ length: 51 }, (_, i) => `c${i}`), ['BAD_USER_INPUT', 400]],
      ['a token the gateway refuses', 'not-a-token', ['c1'], ['UNAUTHENTICATED', 401]],
    ])('throws the refusal of %s, with its code, at once', async (_what, token, channelIds, expected) => {
      const updates = createTvSubscriptions(stack.gateway.url, () => token)(OnAir, { channelIds });
      const error = (await within('the refusal', updates.next().catch((failed: unknown) => failed))) as GatewayGraphQLError;
      expect(error).toBeInstanceOf(GatewayGraphQLError);
      expect([error.code, error.status]).toEqual(expected);
      expect(error.requestId).toMatch(/\S/);
    });
  });
});

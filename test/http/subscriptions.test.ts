/**
 * GraphQL subscriptions from the client's side, with the real client libraries (graphql-sse, graphql-ws)
 * against the reference services (programmes 2 s long: LIVETV_SLOT_SECONDS), each behind a counting
 * proxy so that what the upstreams were asked is known.
 */
import { randomUUID } from 'node:crypto';
import { describe, expect, it, onTestFinished, vi } from 'vitest';
import { CHANGE_EVENTS_PATH, signChangeEvent } from '../../shared/change-events.js';
import { sample } from '../helpers/metrics.js';
import { startStack, useStack } from '../helpers/stack.js';
import { sseSubscribe, wsConnect } from '../helpers/subscribe.js';
import { adminToken, signToken, userToken } from '../helpers/tokens.js';
import { eventually, within } from '../helpers/wait.js';
import { captureLog } from '../helpers/gateway.js';

const SLOT_SECONDS = 2;
const NOW_PLAYING = 'subscription Guide($ids: [ID!]!) { nowPlaying(channelIds: $ids) { channel { id name } program { id title end } } }';
const CHANNEL_UPDATED = 'subscription Watch($id: ID!) { channelUpdated(id: $id) { id name number free } }';

type NowPlaying = { nowPlaying: { channel: { id: string; name: string }; program: { id: string; title: string; end: string } | null } };
type ChannelUpdated = { channelUpdated: { id: string; name: string; number: number } };

const openSubscriptions = async (gatewayUrl: string, transport: 'sse' | 'ws') => sample(await (await fetch(`${gatewayUrl}/metrics`)).text(), 'gateway_graphql_subscriptions', { transport });

const channelInput = (name: string, number: number) => ({ name, number, free: false });

async function editChannel(gatewayUrl: string, id: string, name: string, number: number): Promise<void> {
  const response = await fetch(`${gatewayUrl}/admin/livetv/channels/${id}`, {
    method: 'PUT',
    headers: { authorization: `Bearer ${await adminToken()}`, 'content-type': 'application/json' },
    body: JSON.stringify(channelInput(name, number)),
  });
  expect(response.status).toBe(200);
}

describe('nowPlaying and channelUpdated over both transports', () => {
  const stack = useStack({ upstreams: 'reference', counting: true, serviceEnv: { LIVETV_SLOT_SECONDS: String(SLOT_SECONDS) } });

  it('emits each channel’s programme at once over SSE, then the next one when it ends, with no upstream call per subscriber', async () => {
    const subscribers = Array.from({ length: 12 }, () => sseSubscribe<NowPlaying>(stack.gateway.url, NOW_PLAYING, { variables: { ids: ['c1', 'c2'] } }));
    try {
      await Promise.all(subscribers.map((subscriber) => subscriber.received(2, 'the programme on air on c1 and c2')));
      for (const { results } of subscribers) {
        expect(results.map((result) => result.data?.nowPlaying.channel.id).sort()).toEqual(['c1', 'c2']);
        expect(results.every((result) => result.data?.nowPlaying.program?.title)).toBe(true);
      }
      const first = subscribers[0]?.results.find((result) => result.data?.nowPlaying.channel.id === 'c1')?.data?.nowPlaying.program;
      stack.counting.reset();
      // The boundary: every subscriber hears the next programme of each channel.
      await Promise.all(subscribers.map((subscriber) => subscriber.received(4, 'the programmes after the boundary')));
      const next = subscribers[0]?.results.slice(2).find((result) => result.data?.nowPlaying.channel.id === 'c1')?.data?.nowPlaying.program;
      expect(next?.id).not.toBe(first?.id);
      expect(Date.parse(next?.end ?? '')).toBeGreaterThan(Date.parse(first?.end ?? ''));
      // One read per boundary for everyone (the channels and what is on air: two calls), not twelve.
      const livetv = stack.counting.calls.filter((call) => call.upstream === 'livetv');
      expect(livetv.length, JSON.stringify(livetv.map((call) => call.url))).toBeLessThanOrEqual(4);
      expect(stack.counting.calls.filter((call) => call.upstream !== 'livetv')).toEqual([]);
    } finally {
      await Promise.all(subscribers.map((subscriber) => subscriber.stop()));
    }
  });

  it('over a WebSocket: channelUpdated after an admin’s REST edit and a GraphQL edit, and completes when the channel is deleted', async () => {
    const created = await fetch(`${stack.gateway.url}/graphql`, {
      method: 'POST',
      headers: { authorization: `Bearer ${await adminToken()}`, 'content-type': 'application/json' },
      body: JSON.stringify({ query: 'mutation { adminCreateChannel(input: { name: "Pop Up", number: 901, free: true }) { id } }' }),
    });
    const { data } = (await created.json()) as { data: { adminCreateChannel: { id: string } } };
    const id = data.adminCreateChannel.id;
    const connection = wsConnect(stack.gateway.url);
    const watched = connection.subscribe<ChannelUpdated>(CHANNEL_UPDATED, { variables: { id } });
    const playing = connection.subscribe<NowPlaying>(NOW_PLAYING, { variables: { ids: [id] } });
    try {
      await playing.received(1, 'the programme on air on the new channel');
      await editChannel(stack.gateway.url, id, 'Pop Up Two', 902);
      await watched.received(1, 'the REST edit');
      expect(watched.results[0]?.data?.channelUpdated).toEqual({ id, name: 'Pop Up Two', number: 902, free: false });
      const renamed = await fetch(`${stack.gateway.url}/graphql`, {
        method: 'POST',
        headers: { authorization: `Bearer ${await adminToken()}`, 'content-type': 'application/json' },
        body: JSON.stringify({ query: `mutation { adminUpdateChannel(id: "${id}", input: { name: "Pop Up Three", number: 903, free: true }) { id } }` }),
      });
      expect(renamed.status).toBe(200);
      await watched.received(2, 'the GraphQL edit');
      expect(watched.results[1]?.data?.channelUpdated.name).toBe('Pop Up Three');
      // nowPlaying says the channel's new name too.
      await eventually('nowPlaying with the new name', () => playing.results.some((result) => result.data?.nowPlaying.channel.name === 'Pop Up Three'));
      const deleted = await fetch(`${stack.gateway.url}/admin/livetv/channels/${id}`, { method: 'DELETE', headers: { authorization: `Bearer ${await adminToken()}` } });
      expect(deleted.status).toBe(204);
      expect(await within('channelUpdated to complete once the channel is deleted', watched.ended)).toEqual({});
      expect(watched.results).toHaveLength(2);
    } finally {
      await playing.stop();
      await connection.dispose();
    }
  });

  it('hears a change made behind the gateway’s back, announced by the live TV service with a signed event', async () => {
    const secret = 'change-events-secret-for-this-test-0123456789';
    const own = await startStack({ upstreams: 'reference', counting: true, env: { CHANGE_EVENTS_SECRET: secret } });
    try {
      own.services.env.changeEvents = { url: `${own.gateway.url}${CHANGE_EVENTS_PATH}`, secret };
      const watched = sseSubscribe<ChannelUpdated>(own.gateway.url, CHANNEL_UPDATED, { variables: { id: 'c3' } });
      await eventually('the subscription to be open', async () => (await openSubscriptions(own.gateway.url, 'sse')) === 1);
      // An admin tool calls the service itself, as the gateway would (identity headers), not through it.
      const direct = await fetch(`${own.services.urls.livetv}/admin/livetv/channels/c3`, {
        method: 'PUT',
        headers: { 'x-user-id': '3', 'x-user-roles': 'user,admin', 'content-type': 'application/json' },
        body: JSON.stringify(channelInput('Behind The Back', 303)),
      });
      expect(direct.status).toBe(200);
      await watched.received(1, 'the change announced by the service');
      expect(watched.results[0]?.data?.channelUpdated).toMatchObject({ id: 'c3', name: 'Behind The Back', number: 303 });
      // The caches follow too: a query right after sees the new name.
      const answer = await fetch(`${own.gateway.url}/livetv/channels/c3`, { headers: { authorization: `Bearer ${await userToken()}` } });
      expect(((await answer.json()) as { name: string }).name).toBe('Behind The Back');
      await watched.stop();
    } finally {
      await own.close();
    }
  });
});

describe('refused change events', () => {
  const secret = 'change-events-secret-for-this-test-0123456789';
  // Programmes ten days long: no boundary's read among the reads counted here.
  const stack = useStack({ upstreams: 'reference', counting: true, env: { CHANGE_EVENTS_SECRET: secret }, serviceEnv: { LIVETV_SLOT_SECONDS: '864000' } });

  it('changes nothing for an event that is unsigned, signed with another key, stale, replayed or not a change', async () => {
    const watched = wsConnect(stack.gateway.url);
    const updates = watched.subscribe<ChannelUpdated>(CHANNEL_UPDATED, { variables: { id: 'c4' } });
    try {
      await eventually('the subscription to be open', async () => (await openSubscriptions(stack.gateway.url, 'ws')) === 1);
      // Cached before: a forged event must not even drop it.
      await fetch(`${stack.gateway.url}/livetv/channels/c4`);
      stack.counting.reset();
      const body = JSON.stringify({ operationId: 'adminUpdateChannel', params: { id: 'c4' } });
      const post = (headers: Record<string, string>, payload = body) => fetch(`${stack.gateway.url}${CHANGE_EVENTS_PATH}`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: payload });
      const now = Math.floor(Date.now() / 1000);
      const attempts: [string, Response][] = [
        ['unsigned', await post({})],
        ['another key', await post({ ...signChangeEvent('another-secret-of-the-same-length-0123456789', randomUUID(), body) })],
        ['stale', await post({ ...signChangeEvent(secret, randomUUID(), body, now - 600) })],
        ['from the future', await post({ ...signChangeEvent(secret, randomUUID(), body, now + 600) })],
        ['signed for another body', await post({ ...signChangeEvent(secret, randomUUID(), body) }, JSON.stringify({ operationId: 'adminDeleteChannel', params: { id: 'c4' } }))],
      ];
      for (const [what, response] of attempts) expect(response.status, what).toBe(401);
      const signed = signChangeEvent(secret, randomUUID(), body);
      expect((await post({ ...signed })).status).toBe(204);
      expect((await post({ ...signed })).status, 'replayed').toBe(401);
      const notAChange = JSON.stringify({ operationId: 'channels', params: {} });
      expect((await post({ ...signChangeEvent(secret, randomUUID(), notAChange) }, notAChange)).status).toBe(400);
      expect((await fetch(`${stack.gateway.url}${CHANGE_EVENTS_PATH}`)).status).toBe(405);
      // The one accepted event made the live feed read c4 once (nothing changed, so nothing was sent).
      await eventually('the accepted event’s read', () => stack.counting.calls.some((call) => call.url.startsWith('/livetv/channels/batch')));
      const reads = stack.counting.calls.filter((call) => call.upstream === 'livetv');
      expect(reads.length).toBeLessThanOrEqual(2);
      expect(updates.results).toEqual([]);
    } finally {
      await updates.stop();
      await watched.dispose();
    }
  });
});

describe('limits and lifecycle', () => {
  const log = captureLog('info');
  const stack = useStack({
    upstreams: 'reference',
    env: { SUBSCRIPTIONS_PER_CLIENT: '3', SUBSCRIPTIONS_PER_CONNECTION: '2', TRUST_PROXY_HOPS: '1', GRAPHQL_MAX_COST: '200' },
    logger: log.logger,
  });

  it('refuses a client’s fourth subscription on both transports, and not another client’s', async () => {
    const from = (address: string) => ({ 'x-forwarded-for': address });
    const held = [0, 1, 2].map(() => sseSubscribe(stack.gateway.url, NOW_PLAYING, { variables: { ids: ['c1'] }, headers: from('203.0.113.7') }));
    try {
      await Promise.all(held.map((subscriber) => subscriber.received(1)));
      const fourth = await fetch(`${stack.gateway.url}/graphql`, {
        method: 'POST',
        headers: { accept: 'text/event-stream', 'content-type': 'application/json', ...from('203.0.113.7') },
        body: JSON.stringify({ query: NOW_PLAYING, variables: { ids: ['c1'] } }),
      });
      expect(fourth.status).toBe(429);
      expect(((await fourth.json()) as { errors: { extensions: { code: string } }[] }).errors[0]?.extensions.code).toBe('RATE_LIMITED');
      const overWs = wsConnect(stack.gateway.url, { headers: from('203.0.113.7') }).subscribe(NOW_PLAYING, { variables: { ids: ['c1'] } });
      const refused = await within('the WebSocket refusal', overWs.ended);
      expect(JSON.stringify(refused.error)).toContain('RATE_LIMITED');
      const other = sseSubscribe(stack.gateway.url, NOW_PLAYING, { variables: { ids: ['c1'] }, headers: from('198.51.100.9') });
      await other.received(1, 'another client’s subscription');
      await other.stop();
    } finally {
      await Promise.all(held.map((subscriber) => subscriber.stop()));
    }
  });

  it('bounds a connection’s subscriptions, a subscription’s channels and its cost, before any upstream call', async () => {
    const connection = wsConnect(stack.gateway.url, { headers: { 'x-forwarded-for': '192.0.2.44' } });
    try {
      const kept = [connection.subscribe(NOW_PLAYING, { variables: { ids: ['c1'] } }), connection.subscribe(NOW_PLAYING, { variables: { ids: ['c2'] } })];
      await Promise.all(kept.map((subscription) => subscription.received(1)));
      const third = connection.subscribe(NOW_PLAYING, { variables: { ids: ['c3'] } });
      expect(JSON.stringify((await within('the third subscription’s refusal', third.ended)).error)).toContain('At most 2 subscriptions per connection');
      await Promise.all(kept.map((subscription) => subscription.stop()));
    } finally {
      await connection.dispose();
    }
    const ids = Array.from({ length: 51 }, (_, i) => `c${i + 1}`);
    const tooMany = await fetch(`${stack.gateway.url}/graphql`, {
      method: 'POST',
      headers: { accept: 'text/event-stream', 'content-type': 'application/json', 'x-forwarded-for': '192.0.2.45' },
      body: JSON.stringify({ query: NOW_PLAYING, variables: { ids } }),
    });
    expect(tooMany.status).toBe(400);
    expect(await tooMany.text()).toMatch(/BAD_USER_INPUT/);
    const costly = await fetch(`${stack.gateway.url}/graphql`, {
      method: 'POST',
      headers: { accept: 'text/event-stream', 'content-type': 'application/json', 'x-forwarded-for': '192.0.2.45' },
      body: JSON.stringify({ query: 'subscription { nowPlaying(channelIds: ["c1", "c2", "c3", "c4", "c5"]) { channel { schedule { id title } } } }' }),
    });
    expect(costly.status).toBe(400);
    expect(await costly.text()).toMatch(/costs \d+, over the limit of 200/);
  });

  it('ends a stream when its token expires, with UNAUTHENTICATED naming the expiry, on both transports', async () => {
    const expiresAt = Math.floor(Date.now() / 1000) + 3;
    const token = await signToken({ sub: '1', roles: ['user'], exp: expiresAt }, { expiresIn: null });
    const query = 'subscription { channelUpdated(id: "c1") { id entitlement { canPlay } } }';
    const overSse = sseSubscribe(stack.gateway.url, query, { headers: { authorization: `Bearer ${token}`, 'x-forwarded-for': '192.0.2.50' } });
    const connection = wsConnect(stack.gateway.url, { connectionParams: { authorization: `Bearer ${token}` }, headers: { 'x-forwarded-for': '192.0.2.51' } });
    const overWs = connection.subscribe(query);
    try {
      for (const [label, subscription] of [['SSE', overSse], ['WebSocket', overWs]] as const) {
        await within(`the ${label} stream to end at the token’s expiry`, subscription.ended);
        const last = subscription.results.at(-1);
        expect(last?.errors?.[0]?.extensions?.code, label).toBe('UNAUTHENTICATED');
        expect(last?.errors?.[0]?.message, label).toContain(new Date(expiresAt * 1000).toISOString());
      }
      expect(log.lines.filter((line) => line.msg === 'subscription ended: expired')).toHaveLength(2);
    } finally {
      await connection.dispose();
    }
  });

  it('refuses a token in connection_init that does not verify, closing with 4401', async () => {
    const connection = wsConnect(stack.gateway.url, { connectionParams: { authorization: `Bearer ${await userToken()}x` } });
    const subscription = connection.subscribe(NOW_PLAYING, { variables: { ids: ['c1'] } });
    expect((await within('the close', connection.closed)).code).toBe(4401);
    await within('the subscription to fail', subscription.ended);
    expect(subscription.results).toEqual([]);
  });
});

describe('RATE_LIMIT_PER_MINUTE on a WebSocket', () => {
  const stack = useStack({ upstreams: 'reference', counting: true, env: { RATE_LIMIT_PER_MINUTE: '6' }, serviceEnv: { LIVETV_SLOT_SECONDS: '864000' } });

  it('draws a token for each subscribe message, so one connection cannot turn into a stream of upstream reads', async () => {
    // The limiter reads Date.now: it stands still until the test ends, so a slow run refills the bucket by nothing.
    vi.useFakeTimers({ toFake: ['Date'] });
    onTestFinished(() => void vi.useRealTimers());
    const connection = wsConnect(stack.gateway.url);
    // Held open: the client library would otherwise close an idle connection and open another.
    const held = connection.subscribe(CHANNEL_UPDATED, { variables: { id: 'c1' } });
    try {
      const outcomes: string[] = [];
      for (let i = 0; i < 12; i++) {
        // A channel id of its own each time: nothing cached could hide the reads.
        const subscription = connection.subscribe(NOW_PLAYING, { variables: { ids: [`c${(i % 20) + 1}`, `nope-${i}`] } });
        const first = await Promise.race([subscription.ended.then((ended) => ({ ended })), subscription.received(1).then(() => ({ ended: undefined }))]);
        outcomes.push(first.ended?.error ? (JSON.stringify(first.ended.error).includes('RATE_LIMITED') ? 'limited' : `failed: ${JSON.stringify(first.ended.error)} ${String(first.ended.error)}`) : 'served');
        await subscription.stop();
      }
      // The upgrade and the held subscription took two tokens of six: four more subscriptions, then 429s.
      expect(outcomes).toEqual([...Array<string>(4).fill('served'), ...Array<string>(8).fill('limited')]);
      const reads = stack.counting.calls.filter((call) => call.upstream === 'livetv');
      expect(reads.length).toBeLessThanOrEqual(10);
    } finally {
      await held.stop();
      await connection.dispose();
    }
  });
});

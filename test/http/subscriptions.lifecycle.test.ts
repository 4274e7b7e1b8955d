/**
 * Subscriptions across replicas (a real Redis between two gateways), through a gateway process's
 * SIGTERM, and under TRUSTED_DOCUMENTS_MODE=require, with the real client libraries.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import { documentId } from '../../gateway/src/trusted-documents.js';
import { IN_MEMORY } from '../../services/lib/environment.js';
import { startReferenceServices } from '../../services/registry.js';
import { upstreamEnvironment } from '../../shared/upstreams.js';
import { useFixture } from '../helpers/fixture.js';
import { sample } from '../helpers/metrics.js';
import { spawnGateway } from '../helpers/process.js';
import { startRedis } from '../helpers/redis.js';
import { startStack, useStack } from '../helpers/stack.js';
import { sseSubscribe, wsConnect } from '../helpers/subscribe.js';
import { adminToken, TEST_SECRET } from '../helpers/tokens.js';
import { eventually, within } from '../helpers/wait.js';

const CHANNEL_UPDATED = 'subscription Watch($id: ID!) { channelUpdated(id: $id) { id name number } }';
type ChannelUpdated = { channelUpdated: { id: string; name: string; number: number } };

const openSubscriptions = async (gatewayUrl: string, transport: 'sse' | 'ws') => sample(await (await fetch(`${gatewayUrl}/metrics`)).text(), 'gateway_graphql_subscriptions', { transport }) ?? 0;

describe('two replicas sharing a Redis', () => {
  const cluster = useFixture(
    async () => {
      const redis = await startRedis({ password: 'subscriptions-redis-pa55' });
      const stack = await startStack({ upstreams: 'reference', gateways: 2, env: { REDIS_URL: redis.url, REDIS_PASSWORD: 'subscriptions-redis-pa55' } });
      return { redis, stack };
    },
    async ({ redis, stack }) => {
      await stack.close();
      await redis.stop();
    },
  );

  it('delivers an admin’s edit through replica A to subscribers on replica B within a second, over SSE and a WebSocket', async () => {
    const [a, b] = cluster.stack.gateways;
    if (!a || !b) throw new Error('two gateways');
    const overSse = sseSubscribe<ChannelUpdated>(b.url, CHANNEL_UPDATED, { variables: { id: 'c5' } });
    const connection = wsConnect(b.url);
    const overWs = connection.subscribe<ChannelUpdated>(CHANNEL_UPDATED, { variables: { id: 'c5' } });
    try {
      await eventually('both subscriptions open on replica B', async () => (await openSubscriptions(b.url, 'sse')) === 1 && (await openSubscriptions(b.url, 'ws')) === 1);
      const arrivals: number[] = [];
      for (const [round, [through, via]] of ([[a, 'REST'], [a, 'GraphQL'], [b, 'REST']] as const).entries()) {
        const name = `Replicated ${round}`;
        let changed = 0;
        if (via === 'REST') {
          const response = await fetch(`${through.url}/admin/livetv/channels/c5`, {
            method: 'PUT',
            headers: { authorization: `Bearer ${await adminToken()}`, 'content-type': 'application/json' },
            body: JSON.stringify({ name, number: 105, free: false }),
          });
          changed = performance.now();
          expect(response.status).toBe(200);
        } else {
          const response = await fetch(`${through.url}/graphql`, {
            method: 'POST',
            headers: { authorization: `Bearer ${await adminToken()}`, 'content-type': 'application/json' },
            body: JSON.stringify({ query: `mutation { adminUpdateChannel(id: "c5", input: { name: "${name}", number: 105, free: false }) { id } }` }),
          });
          changed = performance.now();
          expect(response.status).toBe(200);
        }
        await overSse.received(round + 1, `the ${via} edit over SSE`);
        await overWs.received(round + 1, `the ${via} edit over the WebSocket`);
        // From the edit's answer (the change is made) to each subscriber's event.
        arrivals.push(Math.max((overSse.arrivals[round] ?? 0) - changed, (overWs.arrivals[round] ?? 0) - changed));
        expect(overSse.results[round]?.data?.channelUpdated.name).toBe(name);
        expect(overWs.results[round]?.data?.channelUpdated.name).toBe(name);
      }
      // The waits above are bounded generously for a busy machine; the delivery itself is what is held to a second.
      expect(Math.max(...arrivals), `arrivals: ${arrivals.map((ms) => ms.toFixed(0)).join(', ')} ms`).toBeLessThan(1000);
    } finally {
      await overSse.stop();
      await overWs.stop();
      await connection.dispose();
    }
  });
});

describe('SIGTERM to a gateway process with open streams', () => {
  it('closes every stream once it stops taking requests (SSE without complete, WebSockets with 1001), and exits 0 within SHUTDOWN_GRACE_MS', async () => {
    const services = await startReferenceServices({ anyPorts: true, env: { LOG_LEVEL: 'silent', JWT_SECRET_KEY: TEST_SECRET, DATA_DIR: IN_MEMORY } });
    onTestFinished(() => services.close());
    const gateway = await spawnGateway({ JWT_SECRET_KEY: TEST_SECRET, LOG_LEVEL: 'info', LOG_FORMAT: 'json', SHUTDOWN_DRAIN_MS: '300', SHUTDOWN_GRACE_MS: '8000', ...upstreamEnvironment(services.urls) });
    onTestFinished(async () => {
      await gateway.stop();
    });
    const overSse = sseSubscribe(gateway.url, CHANNEL_UPDATED, { variables: { id: 'c1' } });
    const connection = wsConnect(gateway.url);
    const overWs = connection.subscribe(CHANNEL_UPDATED, { variables: { id: 'c1' } });
    await eventually('both subscriptions open', async () => (await openSubscriptions(gateway.url, 'sse')) === 1 && (await openSubscriptions(gateway.url, 'ws')) === 1);
    const signalled = performance.now();
    gateway.child.kill('SIGTERM');
    const sseEnd = await within('the SSE stream to end', overSse.ended);
    const wsClose = await within('the WebSocket to close', connection.closed);
    const closedAfterMs = performance.now() - signalled;
    // Closed, not completed: a client library takes it for a connection to make again.
    expect(sseEnd.error).toBeDefined();
    expect(overSse.results).toEqual([]);
    expect(wsClose.code).toBe(1001);
    expect(await within('the process to exit', gateway.exited)).toBe(0);
    expect(closedAfterMs, 'ms from SIGTERM to both streams closed: they wait out the 300 ms drain, not the 8 s grace').toBeLessThan(8000);
    const ended = gateway.logLines().filter((line) => typeof line.msg === 'string' && line.msg.startsWith('subscription ended'));
    expect(ended.map((line) => [line.transport, line.reason]).sort()).toEqual([
      ['sse', 'shutdown'],
      ['ws', 'shutdown'],
    ]);
    await overWs.ended;
  });
});

describe('TRUSTED_DOCUMENTS_MODE=require', () => {
  const registered = 'subscription Registered { channelUpdated(id: "c1") { id name } }';
  const directory = mkdtempSync(join(tmpdir(), 'trusted-subscriptions-'));
  const manifest = join(directory, 'manifest.json');
  writeFileSync(manifest, JSON.stringify({ [documentId(registered)]: registered }));
  const stack = useStack({ upstreams: 'reference', env: { TRUSTED_DOCUMENTS: manifest, TRUSTED_DOCUMENTS_MODE: 'require' } });

  it('refuses a subscription that is not in the manifest on both transports, and runs one that is by its id', async () => {
    const other = 'subscription Other { channelUpdated(id: "c1") { id number } }';
    const refusedSse = await fetch(`${stack.gateway.url}/graphql`, {
      method: 'POST',
      headers: { accept: 'text/event-stream', 'content-type': 'application/json' },
      body: JSON.stringify({ query: other }),
    });
    expect(refusedSse.status).toBe(400);
    expect(await refusedSse.text()).toContain('PERSISTED_DOCUMENT_REQUIRED');
    // Not even the registered text itself: only its id runs.
    const textOverWs = wsConnect(stack.gateway.url);
    const refusedWs = textOverWs.subscribe(registered);
    expect(JSON.stringify((await within('the WebSocket refusal', refusedWs.ended)).error)).toContain('PERSISTED_DOCUMENT_REQUIRED');
    await textOverWs.dispose();

    const viaSse = await fetch(`${stack.gateway.url}/graphql`, {
      method: 'POST',
      headers: { accept: 'text/event-stream', 'content-type': 'application/json' },
      body: JSON.stringify({ documentId: documentId(registered) }),
      signal: AbortSignal.timeout(20_000),
    });
    expect(viaSse.status).toBe(200);
    expect(viaSse.headers.get('content-type')).toMatch(/^text\/event-stream/);
    await viaSse.body?.cancel();
    const connection = wsConnect(stack.gateway.url);
    try {
      const viaWs = connection.client.iterate({ query: '', ...({ documentId: documentId(registered) } as object) } as { query: string });
      const first = viaWs.next();
      await eventually('the registered subscription to be open', async () => (await openSubscriptions(stack.gateway.url, 'ws')) === 1);
      const edit = await fetch(`${stack.gateway.url}/admin/livetv/channels/c1`, {
        method: 'PUT',
        headers: { authorization: `Bearer ${await adminToken()}`, 'content-type': 'application/json' },
        body: JSON.stringify({ name: 'Trusted News', number: 101, free: true }),
      });
      expect(edit.status).toBe(200);
      expect((await within('the registered subscription’s event', first)).value).toEqual({ data: { channelUpdated: { id: 'c1', name: 'Trusted News' } } });
      await viaWs.return?.();
    } finally {
      await connection.dispose();
    }
  });
});

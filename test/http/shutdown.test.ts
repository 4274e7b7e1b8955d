/**
 * Graceful drain, as a load balancer and its clients meet it: not ready while still serving, then
 * `Connection: close` on every response and the requests in flight finished, nothing reset.
 */
import type { ServerResponse } from 'node:http';
import { Agent, errors as undiciErrors, request } from 'undici';
import { afterAll, beforeAll, beforeEach, describe, expect, it, onTestFinished } from 'vitest';
import { upstreamEnvironment } from '../../shared/upstreams.js';
import { startGateway } from '../helpers/gateway.js';
import { spawnGateway } from '../helpers/process.js';
import { startRecordingUpstreams, type RecordingUpstreams } from '../helpers/recording-upstream.js';
import { TEST_SECRET, userToken } from '../helpers/tokens.js';
import { eventually, within } from '../helpers/wait.js';

let upstreams: RecordingUpstreams;
let token: string;

beforeAll(async () => {
  upstreams = await startRecordingUpstreams();
  token = await userToken();
});
afterAll(async () => upstreams.close());
beforeEach(() => upstreams.reset());

/** The upstream holds its answer until `answer()`; `arrived` resolves when the first request reached it. */
function heldUpstream(): { arrived: Promise<void>; answer: () => void } {
  let arrive!: () => void;
  let held: ServerResponse | undefined;
  const arrived = new Promise<void>((resolve) => (arrive = resolve));
  upstreams.upstreams.ondemand.behaviour = (_req, res: ServerResponse) => {
    held = res;
    arrive();
  };
  return { arrived, answer: () => held?.writeHead(200, { 'content-type': 'text/plain' }).end('finished') };
}

describe('closing a gateway', () => {
  it('reports not ready while it still serves, then finishes the request in flight with Connection: close and refuses new connections', async () => {
    const running = await startGateway(upstreams.urls, { JWT_SECRET_KEY: TEST_SECRET });
    const agent = new Agent({ connections: 1 });
    try {
      // The upstream answers once the drain window has been checked: the request is in flight throughout.
      const upstream = heldUpstream();
      const inFlight = request(`${running.url}/ondemand/slow`, { headers: { authorization: `Bearer ${token}` }, dispatcher: agent });
      await within('the request at the upstream', upstream.arrived);
      // A drain window generous for a busy machine: the two probes below must land inside it.
      const closed = running.gateway.close({ drainMs: 3000, graceMs: 10_000 });

      const ready = await fetch(`${running.url}/ready`);
      expect(ready.status).toBe(503);
      expect(await ready.json()).toMatchObject({ code: 'UPSTREAM_UNAVAILABLE', detail: 'The gateway is shutting down' });
      expect((await fetch(`${running.url}/health`)).status).toBe(200);
      // The drain over, the gateway closes: no new connection; the request in flight is answered then.
      await eventually('the gateway refusing new connections', () => fetch(`${running.url}/health`).then(() => false, () => true));
      upstream.answer();

      const response = await inFlight;
      expect(response.statusCode).toBe(200);
      expect(response.headers.connection).toBe('close');
      expect(await response.body.text()).toBe('finished');
      await closed;
      await expect(fetch(`${running.url}/health`)).rejects.toThrow();
    } finally {
      await agent.close();
    }
  });
});

describe('SIGTERM to a gateway process under keep-alive load', () => {
  it('drains: /ready 503 first, then Connection: close on every response, no request reset, exit 0', async () => {
    upstreams.upstreams.ondemand.behaviour = (_req, res: ServerResponse) => void setTimeout(() => res.writeHead(200, { 'content-type': 'text/plain' }).end('ok'), 50);
    const gateway = await spawnGateway({ JWT_SECRET_KEY: TEST_SECRET, LOG_LEVEL: 'warn', SHUTDOWN_DRAIN_MS: '3000', SHUTDOWN_GRACE_MS: '5000', RATE_LIMIT_PER_MINUTE: '0', ...upstreamEnvironment(upstreams.urls) });
    const { child, exited, url } = gateway;

    let signalled = false;
    const results = { ok: 0, closeAfterSignal: 0, keepAliveAfterClose: 0, resets: [] as string[], refused: 0 };
    let closing = false;
    // Set when the test ends, whatever happened: neither a client nor the process outlives it.
    let stopped = false;
    onTestFinished(async () => {
      stopped = true;
      await gateway.stop();
    });
    // Twenty clients, each on its own keep-alive connection, asking again as soon as they are answered.
    const clients = Array.from({ length: 20 }, async () => {
      const agent = new Agent({ connections: 1, pipelining: 1 });
      try {
        while (!stopped) {
          try {
            const response = await request(`${url}/ondemand/movies`, { headers: { authorization: `Bearer ${token}` }, dispatcher: agent });
            await response.body.text();
            results.ok += 1;
            if (response.headers.connection === 'close') {
              closing = true;
              if (signalled) results.closeAfterSignal += 1;
            } else if (closing) {
              results.keepAliveAfterClose += 1;
            }
          } catch (error) {
            const code = (error as { code?: string }).code ?? '';
            if (code === 'ECONNREFUSED') {
              results.refused += 1;
              return;
            }
            if (error instanceof undiciErrors.SocketError || code === 'ECONNRESET' || code === 'EPIPE') results.resets.push(`${code}: ${(error as Error).message}`);
            else throw error;
          }
        }
      } finally {
        await agent.close();
      }
    });
    await eventually(() => `100 answers to the clients before SIGTERM (${results.ok} so far)`, () => results.ok >= 100);
    child.kill('SIGTERM');
    signalled = true;
    // While it drains, the instance says it is leaving, and keeps serving.
    const readiness = () => fetch(`${url}/ready`).then((response) => response.status, () => 0);
    // The drain window is generous for a busy machine; a probe that finds the process gone (0) missed it.
    expect(await eventually('/ready to stop saying 200 after SIGTERM', async () => {
      const ready = await readiness();
      return ready !== 200 && String(ready);
    }), 'what /ready said while the process drained (0: it had already closed)').toBe('503');
    await eventually('/ready to stop saying 503: the process gone', async () => (await readiness()) !== 503);
    await within(() => `every client refused a connection (${results.refused} of 20 so far)`, Promise.all(clients));
    expect(await within('the process to exit', exited)).toBe(0);
    expect(results.resets).toEqual([]);
    expect(results.closeAfterSignal).toBeGreaterThanOrEqual(20);
    expect(results.keepAliveAfterClose).toBe(0);
    expect(results.refused).toBe(20);
  });
});

import { spawn } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { upstreamEnvironment } from '../gateway/src/upstreams.js';
import { recentOutput, waitUntilReady } from '../scripts/lib/readiness.js';
import { freePortBlock } from './helpers/ports.js';
import { startGateway, type RunningGateway } from './helpers/gateway.js';
import { startRecordingUpstreams, type RecordingUpstreams } from './helpers/recording-upstream.js';
import { TEST_SECRET, userToken } from './helpers/tokens.js';

describe('graceful shutdown', () => {
  let upstreams: RecordingUpstreams;
  let gateway: RunningGateway;

  beforeAll(async () => {
    upstreams = await startRecordingUpstreams();
    gateway = await startGateway(upstreams.urls, { JWT_SECRET_KEY: TEST_SECRET });
  });

  afterAll(async () => {
    await upstreams.close();
  });

  it('lets a request in flight finish, then refuses new connections', async () => {
    upstreams.upstreams.ondemand.behaviour = (_req, res) => void setTimeout(() => res.writeHead(200, { 'content-type': 'text/plain' }).end('finished'), 400);
    const token = await userToken();
    const inFlight = fetch(`${gateway.url}/ondemand/slow`, { headers: { authorization: `Bearer ${token}`, connection: 'close' } });
    await new Promise((resolve) => setTimeout(resolve, 100));
    const closed = gateway.close();
    const response = await inFlight;
    expect(response.status).toBe(200);
    expect(await response.text()).toBe('finished');
    await closed;
    await expect(fetch(`${gateway.url}/health`)).rejects.toThrow();
  });

  it('on SIGTERM, the gateway process finishes the request in flight and exits 0', async () => {
    upstreams.upstreams.ondemand.behaviour = (_req, res) => void setTimeout(() => res.writeHead(200, { 'content-type': 'text/plain' }).end('drained'), 800);
    const port = await freePortBlock(1);
    const child = spawn(process.execPath, ['dist/gateway/src/main.js'], {
      env: { PATH: process.env.PATH, JWT_SECRET_KEY: TEST_SECRET, PORT: String(port), LOG_LEVEL: 'warn', ...upstreamEnvironment(upstreams.urls) },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    const url = `http://127.0.0.1:${port}`;
    await waitUntilReady({ label: 'gateway', url: `${url}/health`, child, output: recentOutput(child) });
    const inFlight = fetch(`${url}/ondemand/slow`, { headers: { authorization: `Bearer ${await userToken()}`, connection: 'close' } });
    await new Promise((resolve) => setTimeout(resolve, 200));
    child.kill('SIGTERM');
    const response = await inFlight;
    expect(response.status).toBe(200);
    expect(await response.text()).toBe('drained');
    expect(await exited).toBe(0);
  });
});

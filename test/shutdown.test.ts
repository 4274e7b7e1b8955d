import { afterAll, beforeAll, describe, expect, it } from 'vitest';
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
});

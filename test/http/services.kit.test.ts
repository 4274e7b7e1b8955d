/** The reference services' kit (services/lib/service.ts) with a service of the test's own making. */
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { describe, expect, it, onTestFinished } from 'vitest';
import type { operations } from '../../shared/api/search.js';
import { serviceEnvironment } from '../../services/lib/environment.js';
import { createServiceServer, defineService } from '../../services/lib/service.js';

/** The search service's spec, served by a handler that fails the way a bug does. */
const failing = defineService<operations>()({
  name: 'search',
  state: () => undefined,
  handlers: {
    search: () => {
      throw new Error('database password is hunter2');
    },
  },
});

async function serve(): Promise<{ url: string; lines: Record<string, unknown>[] }> {
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      lines.push(...chunk.toString().split('\n').filter((line) => line !== '').map((line) => JSON.parse(line) as Record<string, unknown>));
      done();
    },
  });
  const server = await createServiceServer(failing, serviceEnvironment({}), pino({ level: 'info' }, sink));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  onTestFinished(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, lines };
}

describe('the services kit', () => {
  it('answers a failing handler with a bare 500 and logs the error once, with the request id', async () => {
    const { url, lines } = await serve();
    const response = await fetch(`${url}/search/global?q=a`, { headers: { 'x-request-id': 'kit-1' } });
    expect([response.status, await response.json()]).toEqual([500, { detail: 'Internal Server Error' }]);
    expect(lines).toEqual([expect.objectContaining({ level: 50, requestId: 'kit-1', msg: 'unhandled error', err: expect.objectContaining({ message: 'database password is hunter2' }) })]);
  });

  it('answers the health operation itself, named from the upstream list', async () => {
    const { url } = await serve();
    expect(await (await fetch(`${url}/health`)).json()).toEqual({ status: 'ok', service: 'search' });
  });

  it('validates before the handler runs: bad input is a 422 that never reaches it', async () => {
    const { url, lines } = await serve();
    const response = await fetch(`${url}/search/global?q=`);
    expect(response.status).toBe(422);
    expect(((await response.json()) as { detail: { loc: string[] }[] }).detail[0]?.loc).toEqual(['query', 'q']);
    expect(lines).toEqual([]);
  });
});

import { execFile } from 'node:child_process';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

describe("the image's health check (dist/scripts/healthcheck.js)", () => {
  it('passes on 200 only, and fails on an error status or no answer', async () => {
    const server = createServer((req, res) => res.writeHead(req.url === '/health' ? 200 : 503).end());
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    const check = (url: string) =>
      new Promise<number | null>((resolve) => execFile(process.execPath, [`${ROOT}dist/scripts/healthcheck.js`, url], (error) => resolve(error ? (error.code as number) : 0)));
    try {
      expect(await check(`http://127.0.0.1:${port}/health`)).toBe(0);
      expect(await check(`http://127.0.0.1:${port}/ready`)).toBe(1);
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
    expect(await check(`http://127.0.0.1:${port}/health`)).toBe(1);
  });
});

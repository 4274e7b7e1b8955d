/**
 * The unit tier keeps its promise (test/unit/setup.ts): a socket or a process is refused where it is
 * attempted, and an attempt that some code swallowed still fails the test that made it.
 */
import * as childProcess from 'node:child_process';
import { createServer } from 'node:http';
import * as net from 'node:net';
import * as tls from 'node:tls';
import { Pool } from 'undici';
import { describe, expect, it } from 'vitest';
import { useInProcessGateway } from '../helpers/gateway.js';
import { upstreamCallsIn } from '../helpers/metrics.js';
import { signToken } from '../helpers/tokens.js';
import { OutOfTierError, takeRefused } from './setup.js';

/** A port nothing listens on (not 9: fetch refuses that one, a "bad port", before it connects). */
const NOWHERE = 65_535;

/** Runs `attempt`, answers what was refused meanwhile (and forgets it, so that this test passes). */
async function refusedDuring(attempt: () => unknown): Promise<string[]> {
  await Promise.resolve().then(attempt).catch(() => undefined);
  return takeRefused().map((entry) => entry.split('\n')[0] ?? '');
}

describe('the unit tier', () => {
  it('refuses to listen on a port', () => {
    expect(() => net.createServer().listen(0, '127.0.0.1')).toThrow(OutOfTierError);
    expect(() => createServer().listen(0)).toThrow('test/unit opens no socket and starts no process, but this listens on a port: move the test to test/http');
    expect(takeRefused()).toHaveLength(2);
  });

  it.each([
    ['net.connect', () => net.connect(NOWHERE, '127.0.0.1')],
    ['tls.connect', () => tls.connect(NOWHERE, '127.0.0.1')],
    ['fetch', () => fetch(`http://127.0.0.1:${NOWHERE}/`)],
    [
      'an undici Pool',
      async () => {
        const pool = new Pool(`http://127.0.0.1:${NOWHERE}`);
        await pool.request({ method: 'GET', path: '/' }).finally(() => pool.close());
      },
    ],
  ])('refuses to connect through %s', async (_, attempt) => {
    expect(await refusedDuring(attempt)).toEqual(['opens a connection']);
  });

  it.each([
    ['spawn', () => childProcess.spawn(process.execPath, ['--version'])],
    ['execFile', () => childProcess.execFile(process.execPath, ['--version'])],
    ['execFileSync', () => childProcess.execFileSync(process.execPath, ['--version'])],
    ['execSync', () => childProcess.execSync('true')],
  ])('refuses to start a process with %s', async (_, attempt) => {
    expect(await refusedDuring(attempt)).toEqual(['starts a process']);
  });

  describe('with a gateway, which turns a refused connection into an answer', () => {
    const gateway = useInProcessGateway();
    const callUpstream = async () => gateway.inject({ url: '/users/me', headers: { authorization: `Bearer ${await signToken({ sub: '5' })}` } });

    it('still knows of the attempt, and where it was made', async () => {
      // The upstream client does not know the error: a 500, and nothing in the answer shows the attempt.
      const before = await upstreamCallsIn(gateway);
      expect((await callUpstream()).statusCode).toBe(500);
      expect(await upstreamCallsIn(gateway)).toBe(before + 1);
      const refused = takeRefused();
      expect(refused).toHaveLength(1);
      // Kept with where it was made: in the upstream client's library.
      expect(refused[0]).toMatch(/^opens a connection\n[^]*node_modules\/undici\//);
    });

    // Passes only if it fails: nothing in it can, but the check the setup runs after every test.
    it.fails('fails a test that opened a connection, whatever it asserted', async () => {
      await callUpstream().catch(() => undefined);
    });
  });
});

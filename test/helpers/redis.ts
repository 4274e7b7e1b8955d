import { spawn, type ChildProcess } from 'node:child_process';
import { useFixture } from './fixture.js';
import { createConnection } from 'node:net';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { connect as connectTls } from 'node:tls';
import { answersPing } from '../../scripts/lib/redis.js';
import { freePortBlock } from './ports.js';
import { eventually, within } from './wait.js';

export interface RunningRedis {
  readonly url: string;
  /** Freezes the server (SIGSTOP): connections stay open, nothing is answered, until `resume`. */
  pause(): void;
  /** Lets a paused server go on (SIGCONT): it answers what it was sent meanwhile. */
  resume(): void;
  stop(): Promise<void>;
}

/** The test-only CA and the server certificate for 127.0.0.1 (test/fixtures/tls). */
export const TEST_TLS = {
  ca: fileURLToPath(new URL('../fixtures/tls/ca.crt', import.meta.url)),
  cert: fileURLToPath(new URL('../fixtures/tls/redis.crt', import.meta.url)),
  key: fileURLToPath(new URL('../fixtures/tls/redis.key', import.meta.url)),
};

function answersPingOn(port: number, password: string | undefined, tls: boolean): Promise<boolean> {
  const socket = tls ? connectTls({ port, host: '127.0.0.1', ca: readFileSync(TEST_TLS.ca) }) : createConnection(port, '127.0.0.1');
  return answersPing(socket, password);
}

/**
 * A real redis-server of this test's own, on a free port (or `port`: one started again where an earlier
 * one was), with nothing persisted; `password`: requirepass; `tls`: TLS only (the test CA's certificate),
 * as `rediss://`.
 */
export async function startRedis(options: { password?: string; tls?: boolean; port?: number } = {}): Promise<RunningRedis> {
  const port = options.port ?? (await freePortBlock(1));
  const tls = options.tls === true;
  const listen = tls ? ['--port', '0', '--tls-port', String(port), '--tls-cert-file', TEST_TLS.cert, '--tls-key-file', TEST_TLS.key, '--tls-ca-cert-file', TEST_TLS.ca, '--tls-auth-clients', 'no'] : ['--port', String(port)];
  const args = [...listen, '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', ...(options.password === undefined ? [] : ['--requirepass', options.password])];
  const child: ChildProcess = spawn('redis-server', args, { stdio: 'ignore' });
  // Whatever happens to this process, its redis-server goes with it.
  process.once('exit', () => child.kill('SIGKILL'));
  const failed = new Promise<never>((_, reject) => {
    child.once('error', (error) => reject(new Error(`redis-server could not start (is it installed?): ${error.message}`)));
    child.once('exit', (code) => reject(new Error(`redis-server exited (code ${code}) before it answered PING`)));
  });
  const ready = eventually(`redis-server on port ${port} to answer PING`, () => answersPingOn(port, options.password, tls));
  await Promise.race([ready, failed]);
  return {
    url: `${tls ? 'rediss' : 'redis'}://127.0.0.1:${port}`,
    pause: () => child.kill('SIGSTOP'),
    resume: () => child.kill('SIGCONT'),
    stop: () =>
      within(
        'redis-server to exit after SIGTERM',
        new Promise((resolve) => {
          if (child.exitCode !== null) return resolve();
          child.once('exit', () => resolve());
          // A paused server would hold the SIGTERM until it is let go on.
          child.kill('SIGCONT');
          child.kill('SIGTERM');
        }),
      ),
  };
}

/** `startRedis` for the whole describe: started before its tests (and before a stack declared after it), stopped after. */
export function useRedis(options: { password?: string; tls?: boolean } = {}): RunningRedis {
  return useFixture(() => startRedis(options), (redis) => redis.stop());
}

import { spawn, type ChildProcess } from 'node:child_process';
import { createConnection } from 'node:net';
import { freePortBlock } from './ports.js';

export interface RunningRedis {
  readonly url: string;
  stop(): Promise<void>;
}

function answersPing(port: number, password: string | undefined): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection(port, '127.0.0.1', () => socket.write(`${password === undefined ? '' : `AUTH ${password}\r\n`}PING\r\n`));
    socket.once('data', (data) => {
      socket.destroy();
      // Unauthenticated, PING answers -NOAUTH: the server is up all the same.
      resolve(/\+PONG|NOAUTH/.test(data.toString()));
    });
    socket.once('error', () => resolve(false));
  });
}

/** A real redis-server of this test's own, on a free port, with nothing persisted; `password`: requirepass. */
export async function startRedis(options: { password?: string } = {}): Promise<RunningRedis> {
  const port = await freePortBlock(1);
  const args = ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', ...(options.password === undefined ? [] : ['--requirepass', options.password])];
  const child: ChildProcess = spawn('redis-server', args, { stdio: 'ignore' });
  // Whatever happens to this process, its redis-server goes with it.
  process.once('exit', () => child.kill('SIGKILL'));
  const failed = new Promise<never>((_, reject) => child.once('error', (error) => reject(new Error(`redis-server could not start (is it installed?): ${error.message}`))));
  // However long a busy machine takes, unless the server exits first.
  const ready = (async () => {
    while (!(await answersPing(port, options.password))) {
      if (child.exitCode !== null) throw new Error(`redis-server exited (code ${child.exitCode}) before it answered PING`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  })();
  await Promise.race([ready, failed]);
  return {
    url: `redis://127.0.0.1:${port}`,
    stop: () =>
      new Promise((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}

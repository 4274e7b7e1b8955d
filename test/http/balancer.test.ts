import { connect, createServer, type AddressInfo, type Server } from 'node:net';
import { describe, expect, it, onTestFinished } from 'vitest';
import { listenBalancer, type Target } from '../../scripts/lib/balancer.js';
import { freePortBlock } from '../helpers/ports.js';
import { within } from '../helpers/wait.js';

/** A TCP server that answers whatever a connection sent, once the client has ended its side, prefixed with its name. */
async function namedEcho(name: string): Promise<Target> {
  const server = createServer({ allowHalfOpen: true }, (socket) => {
    let received = '';
    socket.on('data', (chunk: Buffer) => (received += chunk.toString()));
    socket.on('end', () => socket.end(`${name}:${received}`));
  });
  return { host: '127.0.0.1', port: await listening(server) };
}

async function listening(server: Server): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  onTestFinished(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return (server.address() as AddressInfo).port;
}

async function balancerOver(targets: readonly Target[]): Promise<number> {
  const port = await freePortBlock(1);
  const balancer = await listenBalancer('127.0.0.1', port, targets);
  onTestFinished(() => new Promise<void>((resolve) => balancer.close(() => resolve())));
  return port;
}

/** Sends `text` on a new connection, ends its side, and answers all that came back before the connection closed (or was reset). */
function exchange(port: number, text: string): Promise<string> {
  return within(
    `an answer to "${text}" through the balancer`,
    new Promise((resolve) => {
      const socket = connect({ port, host: '127.0.0.1', allowHalfOpen: true });
      let answer = '';
      socket.on('data', (chunk: Buffer) => (answer += chunk.toString()));
      // A connection closed unread is reset: what came back is what counts, and 'close' follows.
      socket.on('error', () => undefined);
      socket.on('close', () => resolve(answer));
      socket.on('end', () => socket.end());
      socket.end(text);
    }),
  );
}

describe('the cluster launcher’s TCP balancer', () => {
  it('hands each new connection to the next target in turn, bytes and a half-close passed through untouched', async () => {
    const port = await balancerOver([await namedEcho('a'), await namedEcho('b'), await namedEcho('c')]);
    const answers: string[] = [];
    for (const text of ['1', '2', '3', '4', '5']) answers.push(await exchange(port, text));
    // Each target answered only after the client's end reached it, and its answer still came back.
    expect(answers).toEqual(['a:1', 'b:2', 'c:3', 'a:4', 'b:5']);
  });

  it('passes over a target that refuses the connection for the next one', async () => {
    const closed = await freePortBlock(1);
    const port = await balancerOver([{ host: '127.0.0.1', port: closed }, await namedEcho('b')]);
    expect([await exchange(port, '1'), await exchange(port, '2')]).toEqual(['b:1', 'b:2']);
  });

  it('closes the client’s connection when no target accepts it', async () => {
    const closed = await freePortBlock(2);
    const port = await balancerOver([
      { host: '127.0.0.1', port: closed },
      { host: '127.0.0.1', port: closed + 1 },
    ]);
    expect(await exchange(port, 'anyone?')).toBe('');
  });
});

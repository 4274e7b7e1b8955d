/**
 * What closing counts on: the connections of a server, each forgotten once it closes — also when its
 * client left in the middle of a request, whose response then closes after the socket did.
 */
import { createServer, request, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { describe, expect, it, onTestFinished } from 'vitest';
import { Connections } from '../../gateway/src/lifecycle.js';
import { eventually } from '../helpers/wait.js';

describe('Connections', () => {
  it('forgets a connection whose client left mid-request, and one that ended after its answer', async () => {
    const held: ServerResponse[] = [];
    const closed: ServerResponse[] = [];
    const server = createServer((req, res) => {
      res.once('close', () => closed.push(res));
      if (req.url === '/hang') held.push(res);
      else res.end('ok');
    });
    const connections = new Connections(server);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    onTestFinished(() => new Promise<void>((resolve) => server.close(() => resolve())));
    const { port } = server.address() as AddressInfo;
    // Ten clients leave while their requests are in progress (a stream, a slow answer).
    for (let i = 0; i < 10; i++) {
      const leaving = request({ host: '127.0.0.1', port, path: '/hang' });
      leaving.on('error', () => undefined);
      leaving.end();
    }
    await eventually(() => `ten requests in progress (${held.length})`, () => held.length === 10);
    const sockets = held.map((res) => new WeakRef(res.socket as Socket));
    for (const res of held) res.socket?.destroy();
    await eventually(() => `ten responses closed (${closed.length})`, () => closed.length === 10);
    held.length = 0;
    closed.length = 0;
    // And one that ends as usual, on a connection that closes after its answer.
    await new Promise<void>((resolve, reject) => {
      const done = request({ host: '127.0.0.1', port, path: '/', headers: { connection: 'close' } }, (res) => {
        res.resume();
        res.on('end', resolve);
      });
      done.on('error', reject);
      done.end();
    });
    // Nothing keeps the connections that closed: not the count, not anything it holds. (Node's own
    // http server keeps the last socket it handled, with or without Connections: one may stay.)
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    await eventually(
      () => `the sockets of the clients that left to be collected (${sockets.filter((socket) => socket.deref()).length} held)`,
      () => {
        gc();
        return sockets.filter((socket) => socket.deref() !== undefined).length <= 1;
      },
    );
    expect(connections.count).toBe(0);
  });
});

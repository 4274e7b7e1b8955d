import { createServer, type Server, type Socket } from 'node:net';
import type { PGlite } from '@electric-sql/pglite';

/*
 * The embedded database served over the Postgres wire protocol, so that the services of `npm start`,
 * each in its own process, share one database as they would a real server (PGlite is one session, and
 * its directory is one process's). Many clients, one session, kept apart:
 *  - a client's messages run together up to its Sync (or a simple Query): an extended query (Parse,
 *    Bind, Execute) is never cut in two by another client's;
 *  - a client inside a transaction (or inside an extended query it flushed) has the session to itself
 *    until it ends; one that leaves meanwhile has its transaction rolled back.
 * Clients are trusted as the processes of this machine are: it listens on loopback, and PGlite asks
 * no password.
 */

const PROTOCOL_3 = 196608;
const SSL_REQUEST = 80877103;
const GSS_REQUEST = 80877104;

/** A simple Query message. */
function queryMessage(text: string): Buffer {
  const body = Buffer.from(`${text}\0`);
  const message = Buffer.alloc(5 + body.length);
  message.write('Q', 0);
  message.writeInt32BE(4 + body.length, 1);
  body.copy(message, 5);
  return message;
}

/** The transaction status of the last ReadyForQuery in `output` ('I' idle, 'T' in one, 'E' failed), if any. */
function readyStatus(output: Uint8Array): string | undefined {
  let status: string | undefined;
  const bytes = Buffer.from(output.buffer, output.byteOffset, output.byteLength);
  for (let at = 0; at + 5 <= bytes.length; at += 1 + bytes.readInt32BE(at + 1)) {
    if (bytes[at] === 0x5a) status = String.fromCharCode(bytes[at + 5] ?? 0);
  }
  return status;
}

class Session {
  /** The connection that has the session to itself (inside a transaction or an unfinished extended query). */
  private owner: object | undefined;
  /** A batch is running. */
  private busy = false;
  private waiting: (() => void)[] = [];

  constructor(private readonly pglite: PGlite) {}

  /** Runs one client's batch of messages, its turn come; answers PGlite's output. */
  async run(client: object, batch: Buffer, complete: boolean): Promise<Uint8Array> {
    // Checked and taken in one go (nothing runs in between): the session is free, or this client's.
    while (this.busy || (this.owner !== undefined && this.owner !== client)) await new Promise<void>((resolve) => this.waiting.push(resolve));
    this.busy = true;
    let done = true;
    try {
      const output = await this.pglite.runExclusive(() => this.pglite.execProtocolRaw(batch));
      done = complete && readyStatus(output) === 'I';
      return output;
    } finally {
      this.release(client, done);
    }
  }

  /** A client gone: its transaction, if it had one, is rolled back. */
  async leave(client: object): Promise<void> {
    if (this.owner !== client) return;
    await this.run(client, queryMessage('ROLLBACK'), true);
  }

  private release(client: object, done: boolean): void {
    this.busy = false;
    this.owner = done ? undefined : client;
    const waiting = this.waiting;
    this.waiting = [];
    for (const wake of waiting) wake();
  }
}

/** Splits a client's stream into messages, and messages into batches that end at a Sync, a Query or a Flush. */
function serveClient(socket: Socket, session: Session): void {
  const client = {};
  let buffered = Buffer.alloc(0);
  let started = false;
  let batch: Buffer[] = [];
  // One batch at a time per client, in order.
  let turn = Promise.resolve();
  const send = (output: Uint8Array) => {
    if (!socket.destroyed && output.length > 0) socket.write(output);
  };
  const run = (messages: Buffer[], complete: boolean) => {
    turn = turn
      .then(() => session.run(client, Buffer.concat(messages), complete).then(send))
      .catch(() => {
        socket.destroy();
      });
  };

  socket.on('data', (chunk: Buffer) => {
    buffered = Buffer.concat([buffered, chunk]);
    for (;;) {
      if (!started) {
        if (buffered.length < 8) return;
        const length = buffered.readInt32BE(0);
        if (buffered.length < length) return;
        const code = buffered.readInt32BE(4);
        const message = buffered.subarray(0, length);
        buffered = buffered.subarray(length);
        if (code === SSL_REQUEST || code === GSS_REQUEST) {
          // No encryption on loopback: the client goes on in the clear.
          socket.write('N');
          continue;
        }
        if (code !== PROTOCOL_3) return void socket.destroy();
        started = true;
        run([message], true);
        continue;
      }
      if (buffered.length < 5) return;
      const length = 1 + buffered.readInt32BE(1);
      if (buffered.length < length) return;
      const type = String.fromCharCode(buffered[0] ?? 0);
      const message = buffered.subarray(0, length);
      buffered = buffered.subarray(length);
      if (type === 'X') return void socket.end();
      batch.push(message);
      if (type === 'S' || type === 'Q' || type === 'H') {
        run(batch, type !== 'H');
        batch = [];
      }
    }
  });
  socket.on('error', () => socket.destroy());
  socket.on('close', () => {
    turn = turn.then(() => session.leave(client)).catch(() => undefined);
  });
}

export interface EmbeddedServer {
  readonly port: number;
  close(): Promise<void>;
}

/** Serves `pglite` on `host:port` (0: any free port) until closed; closing drops the clients (rolling back what they had open). */
export async function serveEmbedded(pglite: PGlite, host: string, port: number): Promise<EmbeddedServer> {
  const session = new Session(pglite);
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    socket.setNoDelay(true);
    serveClient(socket, session);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  const address = server.address();
  return {
    port: typeof address === 'object' && address ? address.port : port,
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        for (const socket of sockets) socket.destroy();
      }),
  };
}

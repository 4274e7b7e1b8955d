import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { Server as NetServer, type Socket } from 'node:net';
import type { GatewayPlugin } from './pipeline/pipeline.js';

/**
 * Where an instance is in its life: `serving`; `draining` (shutting down: reported not ready so that a
 * load balancer moves off, while everything is still served); `closing` (no new connections, every
 * response tells its client to close the connection, requests in flight finish).
 */
export type Phase = 'serving' | 'draining' | 'closing';

export class Lifecycle {
  private current: Phase = 'serving';
  private readonly inFlight = new Set<ServerResponse>();

  get phase(): Phase {
    return this.current;
  }

  drain(): void {
    if (this.current === 'serving') this.current = 'draining';
  }

  /** From now on every response, those in flight included, closes its connection when it is done. */
  close(): void {
    this.current = 'closing';
    for (const res of this.inFlight) if (!res.headersSent) res.setHeader('connection', 'close');
  }

  track(res: ServerResponse): void {
    if (this.current === 'closing') res.setHeader('connection', 'close');
    this.inFlight.add(res);
  }

  untrack(res: ServerResponse): void {
    this.inFlight.delete(res);
  }
}

/** Follows every response, so that closing can tell each client to go. */
export function lifecyclePlugin(lifecycle: Lifecycle): GatewayPlugin {
  return {
    name: 'lifecycle',
    phases: {
      onRequest({ res }) {
        lifecycle.track(res);
        return undefined;
      },
    },
    onResponse: ({ res }) => lifecycle.untrack(res),
  };
}

/** How long a connection with no request in progress must stay quiet before closing takes it. */
const IDLE_LINGER_MS = 250;

/**
 * The connections of a server, each with whether a request is in progress and since when it is quiet:
 * what closing needs, since Node's own `server.close()` cuts idle connections at once, a race with a
 * keep-alive client that is just sending its next request.
 */
export class Connections {
  private readonly quietSince = new Map<Socket, number>();
  private readonly busy = new Map<Socket, number>();

  constructor(server: Server) {
    server.on('connection', (socket: Socket) => {
      this.quietSince.set(socket, Date.now());
      socket.once('close', () => {
        this.quietSince.delete(socket);
        this.busy.delete(socket);
      });
    });
    server.on('request', (req: IncomingMessage, res: ServerResponse) => this.started(req.socket, res));
    server.on('checkContinue', (req: IncomingMessage, res: ServerResponse) => this.started(req.socket, res));
  }

  private started(socket: Socket, res: ServerResponse): void {
    this.busy.set(socket, (this.busy.get(socket) ?? 0) + 1);
    // A response closes once: a plain listener, without the wrapper `once` makes for every request.
    res.on('close', () => {
      // A response that closed with its connection (the client left mid-request) closes after the
      // socket did: the connection is forgotten already, and must stay so (it held the socket, the
      // request and the response for good).
      if (socket.destroyed) return;
      this.busy.set(socket, (this.busy.get(socket) ?? 1) - 1);
      this.quietSince.set(socket, Date.now());
    });
  }

  /** Ends the connections that have had no request in progress for a while. */
  endQuiet(now = Date.now()): void {
    for (const [socket, since] of this.quietSince) {
      if ((this.busy.get(socket) ?? 0) === 0 && now - since >= IDLE_LINGER_MS) socket.end();
    }
  }

  /** Open connections. */
  get count(): number {
    return this.quietSince.size;
  }

  destroyAll(): void {
    for (const socket of this.quietSince.keys()) socket.destroy();
  }
}

/**
 * Closes a server gracefully: no new connections; a connection closes after its response in progress
 * (which says `Connection: close`), or once it has been quiet for a moment; after `graceMs` whatever is
 * left is cut.
 */
export function closeGracefully(server: Server, connections: Connections, graceMs: number): Promise<void> {
  if (!server.listening) return Promise.resolve();
  return new Promise((resolve) => {
    // net.Server's close: stop accepting, leave open connections to finish (http.Server's would also
    // cut every idle keep-alive connection at once).
    NetServer.prototype.close.call(server);
    const deadline = Date.now() + graceMs;
    const check = setInterval(() => {
      if (Date.now() >= deadline) connections.destroyAll();
      else connections.endQuiet();
      if (connections.count === 0) {
        clearInterval(check);
        // Nothing is left to cut: http.Server's close now only stops its timeout checks.
        server.close();
        resolve();
      }
    }, 50);
  });
}

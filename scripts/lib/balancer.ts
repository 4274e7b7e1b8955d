import { connect, createServer, type Server, type Socket } from 'node:net';

export interface Target {
  readonly host: string;
  readonly port: number;
}

/**
 * A TCP entry point on `host:port` that hands each connection it accepts to the next of `targets`,
 * round-robin, and pipes the two together: what a Kubernetes Service does for a Deployment's pods at L4,
 * so a keep-alive connection stays on the replica it reached. A target that refuses the connection is
 * passed over for the next one; when none accepts, the client's connection is closed.
 *
 * Written by hand because it is a few lines of node:net: an HTTP proxy library would parse requests and
 * rewrite headers, connections and upgrades, all of which a Service passes through untouched. Unlike a
 * Service (which rewrites only the destination), the replicas see the balancer's loopback address as
 * the client's.
 *
 * Resolves once it listens; `close()` on the server stops it accepting.
 */
export function listenBalancer(host: string, port: number, targets: readonly Target[]): Promise<Server> {
  let next = 0;
  // Half-open allowed on both legs: an end from one side is passed on as an end, as TCP carries it,
  // and the other side may still answer.
  const server = createServer({ allowHalfOpen: true }, (client) => {
    const first = next;
    next = (next + 1) % targets.length;
    let upstream: Socket | undefined;
    // A client that fails (a reset) takes its replica's connection with it, or the one being made.
    client.on('error', () => upstream?.destroy());
    const tryTarget = (tried: number) => {
      const target = targets[(first + tried) % targets.length] as Target;
      const attempt = connect({ host: target.host, port: target.port, allowHalfOpen: true });
      upstream = attempt;
      const refused = () => {
        if (client.destroyed) return;
        if (tried + 1 < targets.length) tryTarget(tried + 1);
        else client.destroy();
      };
      attempt.once('error', refused);
      attempt.once('connect', () => {
        attempt.off('error', refused);
        attempt.on('error', () => client.destroy());
        client.pipe(attempt).pipe(client);
      });
    };
    tryTarget(0);
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      // A connection that could not be accepted (out of file descriptors) is that one lost; the entry point stays.
      server.on('error', () => undefined);
      resolve(server);
    });
  });
}

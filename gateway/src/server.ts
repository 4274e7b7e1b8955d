import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { GatewayConfig } from './config.js';
import { problemOf, sendProblem } from './errors.js';
import type { Logger } from './observability/logger.js';
import { checkReadiness } from './observability/readiness.js';
import { requestIdOf } from './observability/request-id.js';

export interface Gateway {
  readonly server: Server;
  /** Binds the configured host and port (or `port` when given; 0 for any free port) and answers the URL. */
  listen(port?: number): Promise<string>;
  /** Stops accepting connections, lets requests in flight finish (up to `graceMs`), then closes. */
  close(graceMs?: number): Promise<void>;
}

function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const payload = JSON.stringify(body);
  res.writeHead(status, { ...headers, 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload), 'cache-control': 'no-store' });
  res.end(payload);
}

export function createGateway(config: GatewayConfig, logger: Logger): Gateway {
  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const requestId = requestIdOf(req.headers);
    res.setHeader('x-request-id', requestId);
    const path = (req.url ?? '/').split('?')[0] ?? '/';

    if (path === '/health' && (req.method === 'GET' || req.method === 'HEAD')) {
      sendJson(res, 200, { status: 'ok' });
      return;
    }
    if (path === '/ready' && (req.method === 'GET' || req.method === 'HEAD')) {
      const readiness = await checkReadiness(config.upstreams);
      if (readiness.ready) {
        sendJson(res, 200, { status: 'ready', services: readiness.services });
      } else {
        const detail = `Upstream services not ready: ${readiness.failing.join(', ')}`;
        sendProblem(res, problemOf('UPSTREAM_UNAVAILABLE', detail, path, requestId, { failing: readiness.failing, services: readiness.services }));
      }
      return;
    }
    sendProblem(res, problemOf('NOT_FOUND', 'No route matches this path', path, requestId));
  }

  const server = createServer((req, res) => {
    handle(req, res).catch((error: unknown) => {
      logger.error({ err: error }, 'unhandled gateway error');
      if (!res.headersSent) {
        const requestId = String(res.getHeader('x-request-id') ?? '');
        sendProblem(res, problemOf('INTERNAL', 'The gateway failed to handle this request', (req.url ?? '/').split('?')[0] ?? '/', requestId));
      } else {
        res.destroy();
      }
    });
  });
  server.keepAliveTimeout = 65_000;

  return {
    server,
    listen(port = config.port) {
      return new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, config.host, () => {
          server.off('error', reject);
          const address = server.address() as AddressInfo;
          const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
          resolve(`http://${host}:${address.port}`);
        });
      });
    },
    close(graceMs = 10_000) {
      return new Promise((resolve) => {
        const force = setTimeout(() => server.closeAllConnections(), graceMs);
        force.unref();
        server.close(() => {
          clearTimeout(force);
          resolve();
        });
        server.closeIdleConnections();
      });
    },
  };
}

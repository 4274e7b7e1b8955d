import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { identityFromHeaders } from './auth/authenticate.js';
import type { Identity } from './auth/identity.js';
import { createTokenVerifier, type TokenVerifier, type VerifierOptions } from './auth/verifier.js';
import type { GatewayConfig } from './config.js';
import { applyCors } from './cors.js';
import { ERROR_KINDS, GatewayError, problemOf, sendProblem, type ErrorKind } from './errors.js';
import type { Logger } from './observability/logger.js';
import { GatewayMetrics, secondsSince } from './observability/metrics.js';
import { checkReadiness } from './observability/readiness.js';
import { requestIdOf } from './observability/request-id.js';
import { createGraphQLEndpoint, GRAPHQL_PATH, type GraphQLEndpoint } from './graphql/handler.js';
import { createRateLimiter, rateLimitHeaders, rateLimitKey } from './ratelimit/index.js';
import type { RequestContext } from './request-context.js';
import { RestPassthrough } from './rest/handler.js';

export interface Gateway {
  readonly server: Server;
  readonly metrics: GatewayMetrics;
  readonly verifier: TokenVerifier;
  readonly graphql: GraphQLEndpoint;
  /** Binds the configured host and port (or `port` when given; 0 for any free port) and answers the URL. */
  listen(port?: number): Promise<string>;
  /** Stops accepting connections, lets requests in flight finish (up to `graceMs`), then closes. */
  close(graceMs?: number): Promise<void>;
}

/** Paths the gateway answers itself (metrics name them as routes). */
const OWN_ROUTES = new Set(['/health', '/ready', '/metrics', GRAPHQL_PATH]);
const PROBES = new Set(['/health', '/ready', '/metrics']);

/** Largest request head accepted; above it the answer is 431. */
const MAX_HEADER_BYTES = 16 * 1024;
const MAX_INSTANCE_LENGTH = 256;

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const payload = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload), 'cache-control': 'no-store' });
  res.end(payload);
}

function pathOf(req: IncomingMessage): string {
  return (req.url ?? '/').split('?')[0]?.slice(0, MAX_INSTANCE_LENGTH) ?? '/';
}

/** A problem written straight to a socket, for requests Node's parser refused before any handler ran. */
function rawProblem(socket: Socket, kind: ErrorKind, detail: string): void {
  const { status, title } = ERROR_KINDS[kind];
  const body = JSON.stringify({ type: 'about:blank', title, status, detail, instance: '', requestId: randomUUID() });
  socket.end(
    `HTTP/1.1 ${status} ${title}\r\nContent-Type: application/problem+json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
  );
}

export interface GatewayOptions {
  readonly verifier?: VerifierOptions;
}

export async function createGateway(config: GatewayConfig, logger: Logger, options: GatewayOptions = {}): Promise<Gateway> {
  const verifier = await createTokenVerifier(config.jwt, options.verifier);
  const metrics = new GatewayMetrics();
  const rest = new RestPassthrough(config, metrics);
  const graphql = await createGraphQLEndpoint(config, metrics, logger);
  const limiter = createRateLimiter(config, logger);

  /** Takes a token for the caller; a refusal is a 429 before any routing, so no upstream is called. */
  async function enforceRateLimit(req: IncomingMessage, res: ServerResponse, context: RequestContext): Promise<void> {
    if (!limiter) return;
    const decision = await limiter.take(await rateLimitKey(req, context, config.trustProxyHops));
    for (const [name, value] of Object.entries(rateLimitHeaders(decision))) res.setHeader(name, value);
    if (decision.allowed) return;
    metrics.rateLimited.inc();
    throw new GatewayError('RATE_LIMITED', `Too many requests: try again in ${decision.retryAfterSeconds} s`, { 'retry-after': String(decision.retryAfterSeconds) });
  }

  async function handle(req: IncomingMessage, res: ServerResponse, context: RequestContext): Promise<void> {
    if (applyCors(req, res, config.corsOrigins)) return;
    const { requestId } = context;
    const path = pathOf(req);
    if (OWN_ROUTES.has(path)) {
      context.route = path;
      if (path !== GRAPHQL_PATH && req.method !== 'GET' && req.method !== 'HEAD') {
        throw new GatewayError('METHOD_NOT_ALLOWED', `${req.method ?? ''} is not allowed here`, { allow: 'GET, HEAD' });
      }
    }
    // Probes and scrapes are never limited: a busy client must not make the gateway look dead.
    if (!PROBES.has(path)) await enforceRateLimit(req, res, context);
    if (path === '/metrics') {
      const { contentType, body } = await metrics.render();
      res.writeHead(200, { 'content-type': contentType, 'cache-control': 'no-store' }).end(body);
      return;
    }
    if (path === '/health') {
      sendJson(res, 200, { status: 'ok' });
      return;
    }
    if (path === '/ready') {
      const readiness = await checkReadiness(config.upstreams);
      if (readiness.ready) {
        sendJson(res, 200, { status: 'ready', services: readiness.services });
      } else {
        const detail = `Upstream services not ready: ${readiness.failing.join(', ')}`;
        sendProblem(res, problemOf('UPSTREAM_UNAVAILABLE', detail, path, requestId, { failing: readiness.failing, services: readiness.services }));
      }
      return;
    }
    if (path === GRAPHQL_PATH) {
      await graphql.handle(req, res, context);
      return;
    }
    await rest.handle(req, res, context);
  }

  const server = createServer({ maxHeaderSize: MAX_HEADER_BYTES }, (req, res) => {
    const started = process.hrtime.bigint();
    const requestId = requestIdOf(req.headers);
    let identity: Promise<Identity | undefined> | undefined;
    const context: RequestContext = { requestId, route: 'unmatched', authenticate: () => (identity ??= identityFromHeaders(req.headers, verifier)) };
    res.setHeader('x-request-id', requestId);
    res.once('close', () => metrics.observeRequest(context.route, req.method ?? 'GET', res.statusCode, secondsSince(started)));
    handle(req, res, context).catch((error: unknown) => {
      if (res.headersSent) {
        res.destroy();
        return;
      }
      if (error instanceof GatewayError) {
        sendProblem(res, problemOf(error.kind, error.detail, pathOf(req), requestId), error.headers);
        return;
      }
      logger.error({ err: error, requestId }, 'unhandled gateway error');
      sendProblem(res, problemOf('INTERNAL', 'The gateway failed to handle this request', pathOf(req), requestId));
    });
  });
  server.keepAliveTimeout = 65_000;
  server.on('clientError', (error: NodeJS.ErrnoException, socket: Socket) => {
    if (!socket.writable) {
      socket.destroy();
      return;
    }
    if (error.code === 'HPE_HEADER_OVERFLOW') rawProblem(socket, 'HEADERS_TOO_LARGE', 'The request headers are too large');
    else rawProblem(socket, 'BAD_REQUEST', 'The request could not be parsed');
  });

  return {
    server,
    metrics,
    verifier,
    graphql,
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
          void Promise.all([rest.close(), graphql.stop(), limiter?.close()]).then(() => resolve());
        });
        server.closeIdleConnections();
      });
    },
  };
}

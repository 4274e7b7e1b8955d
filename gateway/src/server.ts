import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { InjectOptions, Response as InjectResponse } from 'light-my-request';
import { authenticationPlugin } from './auth/authenticate.js';
import { createTokenVerifier, type TokenVerifier, type VerifierOptions } from './auth/verifier.js';
import type { GatewayConfig } from './config.js';
import { corsPlugin } from './cors.js';
import { GatewayError, internalError, problemResponse, sendGraphQLError, sendProblem, type Correlation } from './errors.js';
import { forwardedPlugin } from './forwarded.js';
import type { GraphQLFace } from './graphql/handler.js';
import { graphqlDescription } from './graphql/openapi.js';
import { accessLogPlugin } from './observability/access-log.js';
import type { Logger } from './observability/logger.js';
import { GatewayMetrics, metricsEndpoint, metricsPlugin } from './observability/metrics.js';
import { readinessEndpoint, UpstreamHealthCheck } from './observability/readiness.js';
import { requestIdPlugin } from './observability/request-id.js';
import { requestTracePlugin } from './observability/request-trace.js';
import type { Tracing } from '../../shared/tracing.js';
import { closeGracefully, Connections, Lifecycle, lifecyclePlugin } from './lifecycle.js';
import { healthEndpoint, ownEndpointsPlugin, type OwnEndpoint } from './own-endpoints.js';
import { docsEndpoints } from './rest/docs.js';
import { protocolPlugin } from './protocol.js';
import { createPipeline, rawPathOf, type Exchange, type GatewayPlugin, type Pipeline } from './pipeline/pipeline.js';
import { credentialLimits, rateLimiting } from './ratelimit/index.js';
import { sharedState } from './cluster/index.js';
import { changeEventsPlugin } from './cluster/change-events.js';
import { CHANGE_EVENTS_PATH } from '../../shared/change-events.js';
import { restFace } from './rest/handler.js';
import { facesPlugin } from './faces.js';
import { routingPlugin } from './routing/router.js';
import { upstreamClient, type UpstreamClient } from './upstream/client.js';

export interface Gateway {
  readonly server: Server;
  readonly metrics: GatewayMetrics;
  readonly verifier: TokenVerifier;
  readonly client: UpstreamClient;
  /** Absent in a REST-only gateway. */
  readonly graphql?: GraphQLFace;
  readonly pipeline: Pipeline;
  /**
   * Binds the configured host and port (or `port` when given; 0 for any free port) and answers the URL;
   * with ADMIN_PORT, the admin listener too (`adminUrl`).
   */
  listen(port?: number): Promise<string>;
  /** The admin listener's URL once it listens (ADMIN_PORT). */
  readonly adminUrl: string | undefined;
  /** Dispatches a request in-process, without a socket (light-my-request), through the same pipeline. */
  inject(options: InjectOptions | string): Promise<InjectResponse>;
  /**
   * Shuts down: reported not ready for `drainMs` while still serving (default 0), then no new
   * connections and `Connection: close` on every response while requests in flight finish, for at most
   * `graceMs` (default SHUTDOWN_GRACE_MS); then everything is closed.
   */
  close(options?: { readonly drainMs?: number; readonly graceMs?: number }): Promise<void>;
}

export interface GatewayOptions {
  readonly verifier?: VerifierOptions;
  /** Serve /graphql (default). Without it, Mesh and Apollo are never loaded. */
  readonly graphql?: boolean;
  /** The clock of the circuit breakers and of the readiness round (epoch ms), for tests that move time themselves. */
  readonly now?: () => number;
  /** The OpenTelemetry SDK, started by the process when tracing is configured. */
  readonly tracing?: Tracing;
}

/** Largest request head accepted; above it the answer is 431. */
const MAX_HEADER_BYTES = 16 * 1024;
const MAX_INSTANCE_LENGTH = 256;

/**
 * A problem written straight to a socket, for requests Node's parser refused before any handler ran;
 * logged like a request (it never became one the pipeline could log).
 */
function rawProblem(socket: Socket, error: GatewayError, logger: Logger): void {
  const requestId = randomUUID();
  const { status, headers, body } = problemResponse(error, '', { requestId });
  const head = Object.entries({ ...headers, connection: 'close' }).map(([name, value]) => `${name}: ${value}\r\n`);
  socket.end(`HTTP/1.1 ${status} ${error.title}\r\n${head.join('')}\r\n${body}`);
  logger.info({ requestId, status, code: error.code, client: socket.remoteAddress }, `unparsable request refused: ${status}`);
}

/**
 * Renders whatever a phase threw: a GraphQL error for the GraphQL face, a problem+json for everything
 * else. Errors outside the catalogue are logged with their cause and answered as a bare 500.
 */
export function errorResponder(logger: Logger): (exchange: Exchange, error: unknown) => void {
  return ({ req, res, state }, error) => {
    const correlation: Correlation = { requestId: state.peek('requestId') ?? randomUUID(), traceId: state.peek('trace')?.traceId };
    const failure = error instanceof GatewayError ? error : internalError(error);
    if (failure.code === 'INTERNAL_SERVER_ERROR') logger.error({ err: failure.cause ?? failure, ...correlation }, 'unexpected gateway error');
    if (res.headersSent) {
      res.destroy();
      return;
    }
    if (res.destroyed) return;
    const route = state.peek('route');
    if (route?.face === 'graphql') {
      sendGraphQLError(req, res, failure, correlation);
      return;
    }
    const instance = route?.face === 'rest' && !(route.target instanceof GatewayError) ? route.target.path : rawPathOf(req);
    sendProblem(res, failure, instance.slice(0, MAX_INSTANCE_LENGTH), correlation);
  };
}

export async function createGateway(config: GatewayConfig, logger: Logger, options: GatewayOptions = {}): Promise<Gateway> {
  // What a capability opens (a Redis connection, Mesh and Apollo) is closed again if a later one fails to start.
  const opened: GatewayPlugin[] = [];
  const started = <T extends { readonly plugin: GatewayPlugin }>(capability: T): T => (opened.push(capability.plugin), capability);
  try {
    return await assemble(config, logger, options, started);
  } catch (error) {
    await createPipeline(opened, () => undefined)
      .close()
      .catch((failure: unknown) => logger.warn({ err: failure }, 'a capability failed to close after a failed start'));
    throw error;
  }
}

async function assemble(config: GatewayConfig, logger: Logger, options: GatewayOptions, started: <T extends { readonly plugin: GatewayPlugin }>(capability: T) => T): Promise<Gateway> {
  const verifier = await createTokenVerifier(config.jwt, options.verifier);
  const metrics = new GatewayMetrics();
  const shared = started(await sharedState(config, logger, metrics));
  const guards = await credentialLimits(config, shared.redis, metrics);
  const upstream = started(upstreamClient(config, { metrics, logger, shared, guards, ...(options.now ? { now: options.now } : {}), ...(options.tracing ? { tracing: options.tracing } : {}) }));
  const { client } = upstream;
  const rateLimit = await rateLimiting(config, shared.redis, logger, metrics);
  if (rateLimit) started(rateLimit);
  const graphql =
    options.graphql === false
      ? undefined
      : started(
          await (
            await import('./graphql/handler.js')
          ).createGraphQLFace(config, { client, shared, verifier, ...(rateLimit ? { requestLimits: rateLimit } : {}), logger, observers: { metrics, ...(options.tracing ? { tracing: options.tracing } : {}) } }),
        );

  // Changes behind the gateway's back, signed by the services (CHANGE_EVENTS_SECRET): on the admin port when there is one.
  const changeEvents = config.changeEventsSecret !== undefined ? changeEventsPlugin({ secret: config.changeEventsSecret, invalidations: shared.invalidations, redis: shared.redis, body: config.body, logger }) : undefined;

  const lifecycle = new Lifecycle();
  const upstreamHealth = new UpstreamHealthCheck(client, options.now);
  const readiness = (details: boolean) => readinessEndpoint({ lifecycle, upstreams: upstreamHealth, requireAllUpstreams: config.readyRequiresAllUpstreams, details, shared });
  // With an admin listener, the public port keeps liveness and a bare readiness; details and metrics move.
  const admin = config.adminPort !== undefined;
  const probes = admin ? [healthEndpoint, readiness(false)] : [healthEndpoint, readiness(true), metricsEndpoint(metrics)];
  // The document describes what this port serves: these probes, /graphql when served, and the docs.
  const publicEndpoints = [...probes, ...docsEndpoints([...probes, ...(graphql ? [graphqlDescription(config.graphqlIntrospection)] : [])])];

  // The gateway is this list: each capability is one plugin, whose steps the pipeline runs phase by phase
  // (see PHASES), and which closes what it opened when the gateway closes (in reverse order).
  const plugins: GatewayPlugin[] = [
    shared.plugin,
    requestTracePlugin({ tracing: options.tracing, trustClientContext: config.tracing.trustClientContext, untraced: new Set(publicEndpoints.map((endpoint) => endpoint.path)) }),
    requestIdPlugin(),
    ...(config.accessLog && logger.isLevelEnabled('info') ? [accessLogPlugin(logger, config.upstreamTimeoutMs + 1000)] : []),
    lifecyclePlugin(lifecycle),
    protocolPlugin(),
    forwardedPlugin({ trustedHops: config.trustProxyHops, ipv6Prefix: config.rateLimitIpv6Prefix }),
    metricsPlugin(metrics),
    corsPlugin({ origins: config.corsOrigins, allowedHeaders: config.corsAllowedHeaders }),
    ownEndpointsPlugin(publicEndpoints),
    ...(changeEvents && !admin ? [changeEvents] : []),
    routingPlugin({ graphql: graphql !== undefined }),
    authenticationPlugin(verifier),
    ...(rateLimit ? [rateLimit.plugin] : []),
    upstream.plugin,
    ...(graphql ? [graphql.plugin] : []),
    facesPlugin({ rest: restFace(client, config.body, config.uploadsPerClient), ...(graphql ? { graphql: graphql.handle } : {}) }),
  ];
  const pipeline = createPipeline(plugins, errorResponder(logger));
  const adminServer = admin ? createAdminServer([healthEndpoint, readiness(true), metricsEndpoint(metrics)], changeEvents, logger) : undefined;
  const adminConnections = adminServer ? new Connections(adminServer) : undefined;
  let adminUrl: string | undefined;
  const dispatch = (req: Parameters<Pipeline['run']>[0], res: Parameters<Pipeline['run']>[1]) => void pipeline.run(req, res);

  const server = createServer(
    {
      maxHeaderSize: MAX_HEADER_BYTES,
      // A request's head must arrive within REQUEST_HEAD_TIMEOUT_MS; the whole request (head and body)
      // within that plus REQUEST_BODY_TIMEOUT_MS, which the body reader also enforces, with a 408.
      headersTimeout: config.headTimeoutMs,
      requestTimeout: config.headTimeoutMs + config.body.totalTimeoutMs,
      // How often Node checks those timeouts (its default, 30 s, would let a 10 s limit run to 40 s).
      connectionsCheckingInterval: 1000,
      keepAliveTimeout: 65_000,
    },
    dispatch,
  );
  const connections = new Connections(server);
  // A client that asks `Expect: 100-continue` is answered by the pipeline like any other; the body
  // reader sends the 100 only once nothing can refuse the request any more.
  server.on('checkContinue', dispatch);
  server.on('clientError', (error: NodeJS.ErrnoException, socket: Socket) => {
    if (!socket.writable) {
      socket.destroy();
      return;
    }
    if (error.code === 'ERR_HTTP_REQUEST_TIMEOUT') {
      // A connection that never sent a byte is closed without a word; a request that stalled gets a 408.
      if (socket.bytesRead === 0) socket.destroy();
      else rawProblem(socket, new GatewayError('REQUEST_TIMEOUT', 'The request did not arrive in time'), logger);
      return;
    }
    if (error.code === 'HPE_HEADER_OVERFLOW') rawProblem(socket, new GatewayError('HEADERS_TOO_LARGE', 'The request headers are too large'), logger);
    else rawProblem(socket, new GatewayError('BAD_USER_INPUT', 'The request could not be parsed'), logger);
  });

  // WebSockets: /graphql's (graphql-ws), through the pipeline like any request; any other is no route.
  server.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) => {
    socket.on('error', () => socket.destroy());
    if (graphql && rawPathOf(req) === '/graphql' && req.headers.upgrade?.toLowerCase() === 'websocket') graphql.upgrade(req, socket, head, dispatch);
    else rawProblem(socket, new GatewayError('NOT_FOUND', 'WebSockets are served at /graphql only'), logger);
  });

  return {
    server,
    metrics,
    verifier,
    client,
    ...(graphql ? { graphql } : {}),
    pipeline,
    async listen(port = config.port) {
      if (adminServer) adminUrl = await listenOn(adminServer, config.adminPort ?? 0, config.host);
      return listenOn(server, port, config.host);
    },
    get adminUrl() {
      return adminUrl;
    },
    // Loaded on first use: serving never needs it.
    inject: async (injectOptions) => (await import('light-my-request')).inject(dispatch, injectOptions),
    async close({ drainMs = 0, graceMs = config.shutdown.graceMs } = {}) {
      lifecycle.drain();
      if (drainMs > 0) await new Promise((resolve) => setTimeout(resolve, drainMs));
      lifecycle.close();
      pipeline.closing();
      await Promise.all([closeGracefully(server, connections, graceMs), ...(adminServer && adminConnections ? [closeGracefully(adminServer, adminConnections, graceMs)] : [])]);
      await pipeline.close();
    },
  };
}

function listenOn(server: Server, port: number, host: string): Promise<string> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      const address = server.address() as AddressInfo;
      const shown = address.family === 'IPv6' ? `[${address.address}]` : address.address;
      resolve(`http://${shown}:${address.port}`);
    });
  });
}

/** The admin listener (ADMIN_PORT): probes, metrics and change events, nothing else, never rate limited. */
function createAdminServer(endpoints: readonly OwnEndpoint[], changeEvents: GatewayPlugin | undefined, logger: Logger): Server {
  const nothingElse: GatewayPlugin = {
    name: 'admin',
    phases: {
      face() {
        throw new GatewayError('NOT_FOUND', `The admin port serves /health, /ready and /metrics${changeEvents ? ` and ${CHANGE_EVENTS_PATH}` : ''} only`);
      },
    },
  };
  const pipeline = createPipeline([requestIdPlugin(), ownEndpointsPlugin(endpoints), ...(changeEvents ? [changeEvents] : []), nothingElse], errorResponder(logger));
  return createServer({ maxHeaderSize: MAX_HEADER_BYTES }, (req, res) => void pipeline.run(req, res));
}

import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { GraphQLError, type ExecutionResult, type GraphQLSchema } from 'graphql';
import { CloseCode, GRAPHQL_TRANSPORT_WS_PROTOCOL, handleProtocols, makeServer, type Server as GraphQLWsServer } from 'graphql-ws';
import { WebSocketServer, type WebSocket } from 'ws';
import { authenticate } from '../auth/authenticate.js';
import type { Identity } from '../auth/identity.js';
import type { TokenVerifier } from '../auth/verifier.js';
import { GatewayError } from '../errors.js';
import type { Exchange } from '../pipeline/pipeline.js';
import type { GraphQLInputBounds } from '../config.js';
import type { Logger } from '../observability/logger.js';
import { nestsWithin, valuesWithin } from './request-bounds.js';
import type { RequestLimits } from '../ratelimit/index.js';
import { decide, type TrustedDocuments } from '../trusted-documents.js';
import { SubscriptionRefused, type SubscriptionParams, type Subscriptions } from './subscriptions.js';
import { MAX_UNSENT_BYTES } from './sse.js';

/** The graphql-ws subprotocol: a client that does not ask for it is refused at the handshake (400). */
const PROTOCOL = GRAPHQL_TRANSPORT_WS_PROTOCOL;
/** A ping every 12 s (as graphql-ws's own glue), under common proxies' idle timeouts; no pong by the next one ends the connection. */
const KEEP_ALIVE_MS = 12_000;
/** A connection must say who it is (connection_init) within this. */
const INIT_TIMEOUT_MS = 5_000;
/** The messages a client may send (graphql-transport-ws); any other closes the connection with 4400. */
const CLIENT_MESSAGES: ReadonlySet<unknown> = new Set(['connection_init', 'ping', 'pong', 'subscribe', 'complete']);

/**
 * Why a client's message cannot be read, or undefined: nested within GRAPHQL_MAX_JSON_DEPTH (JSON.parse
 * would build any depth first), JSON, a message type a client may send. graphql-ws closes with 4400 on
 * a message it cannot read; so does this, before it parses one. (Its variables are bounded when it subscribes.)
 */
function unreadable(text: string, bounds: GraphQLInputBounds): string | undefined {
  if (!nestsWithin(text, bounds.maxJsonDepth)) return `the message nests JSON deeper than ${bounds.maxJsonDepth} levels`;
  let message: unknown;
  try {
    message = JSON.parse(text);
  } catch {
    return 'the message is not JSON';
  }
  if (typeof message !== 'object' || message === null || !CLIENT_MESSAGES.has((message as { type?: unknown }).type)) return 'not a message a client sends';
  return undefined;
}

/** What a connection carries besides graphql-ws's own: the upgrade request's exchange, and who it is. */
/** What graphql-ws's context carries of the connection. */
interface Extra {
  readonly socket: WebSocket;
  readonly request: IncomingMessage;
}

interface Connection {
  readonly exchange: Exchange;
  identity: Identity | undefined;
  authorization: string | undefined;
}

export interface WebSocketsOptions {
  readonly schema: GraphQLSchema;
  readonly subscriptions: Subscriptions;
  readonly verifier: TokenVerifier;
  readonly trusted: TrustedDocuments | undefined;
  /** A message's bounds, as a request body's: GRAPHQL_BODY_LIMIT_BYTES its size, the JSON's depth and values. */
  readonly maxMessageBytes: number;
  readonly bounds: GraphQLInputBounds;
  readonly logger: Logger;
  /** Subscriptions one connection may hold at once. */
  readonly perConnection: number;
  /** CORS_ORIGINS: browsers let any page open a WebSocket, so the gateway checks the Origin itself. */
  readonly isOriginAllowed: (origin: string) => boolean;
  /** RATE_LIMIT_PER_MINUTE: each subscribe message draws a token, as a request over SSE does. */
  readonly requestLimits?: RequestLimits;
}

/**
 * graphql-ws over WebSocket at /graphql (subprotocol graphql-transport-ws). The upgrade request went
 * through the pipeline like any other (request id, client address, CORS origin, rate limit, a token in
 * its Authorization header); a browser, which cannot send that header, puts `{ "authorization": "Bearer
 * …" }` in connection_init instead, verified the same way (a refused one closes with 4401). Each
 * subscribe message is checked as an SSE request is (trusted documents, limits), within
 * SUBSCRIPTIONS_PER_CONNECTION per connection. A client that does not read is cut once MAX_UNSENT_BYTES
 * wait for it; on shutdown every connection closes with 1001, and clients reconnect elsewhere.
 */
export class WebSockets {
  private readonly server: WebSocketServer;
  private readonly connections = new WeakMap<IncomingMessage, Connection>();
  private readonly upgrades = new WeakMap<IncomingMessage, { readonly socket: Duplex; readonly head: Buffer }>();

  constructor(private readonly options: WebSocketsOptions) {
    this.server = new WebSocketServer({ noServer: true, maxPayload: options.maxMessageBytes, handleProtocols });
    const connectionOf = (request: IncomingMessage): Connection => {
      const connection = this.connections.get(request);
      if (!connection) throw new Error('a WebSocket that did not come through the pipeline');
      return connection;
    };
    const graphqlWs = makeServer<Record<string, unknown> | undefined, Extra>({
      schema: options.schema,
      connectionInitWaitTimeout: INIT_TIMEOUT_MS,
      async onConnect(ctx) {
        const connection = connectionOf(ctx.extra.request);
        const given = ctx.connectionParams?.authorization;
        if (given === undefined) return true;
        const outcome = typeof given === 'string' ? await authenticate({ authorization: given }, options.verifier) : undefined;
        if (outcome?.kind !== 'verified') {
          ctx.extra.socket.close(CloseCode.Unauthorized, outcome?.kind === 'refused' ? outcome.error.detail.slice(0, 120) : 'authorization must be a string');
          return false;
        }
        connection.identity = outcome.identity;
        connection.authorization = given as string;
        return true;
      },
      async onSubscribe(ctx, _id, payload) {
        const connection = connectionOf(ctx.extra.request);
        if (Object.keys(ctx.subscriptions).length > options.perConnection) {
          return [new GraphQLError(`At most ${options.perConnection} subscriptions per connection: complete one first`, { extensions: { code: 'RATE_LIMITED' } })];
        }
        if (options.requestLimits) {
          const { state } = connection.exchange;
          const auth = connection.identity ? ({ kind: 'verified', identity: connection.identity } as const) : state.get('auth');
          try {
            await options.requestLimits.take(auth, state.get('forwarded'), state.get('requestId'));
          } catch (error) {
            if (!(error instanceof GatewayError)) throw error;
            return [new GraphQLError(error.detail, { extensions: { code: error.code } })];
          }
        }
        if (!valuesWithin([payload.variables, payload.extensions], options.bounds.maxValues)) {
          return [new GraphQLError(`The subscription's variables and extensions hold more than ${options.bounds.maxValues} values`, { extensions: { code: 'BAD_USER_INPUT' } })];
        }
        let params: SubscriptionParams = payload;
        if (options.trusted) {
          const outcome = decide(options.trusted, payload as unknown as Record<string, unknown>, new URLSearchParams());
          if (outcome.kind === 'refused') return [new GraphQLError(outcome.message, { extensions: { code: outcome.code } })];
          if (outcome.kind === 'registered') params = { ...payload, query: outcome.query };
        }
        try {
          return options.subscriptions.admit(params, { exchange: connection.exchange, identity: connection.identity, transport: 'ws', ...(connection.authorization ? { authorization: connection.authorization } : {}) });
        } catch (error) {
          if (!(error instanceof SubscriptionRefused)) throw error;
          return error.errors.map((each) => new GraphQLError(each.message, { extensions: each.extensions ?? {} }));
        }
      },
      onNext: (_ctx, _id, _payload, _args, result) => options.subscriptions.format(result as ExecutionResult),
      subscribe: (args) => options.subscriptions.stream(args as Parameters<Subscriptions['stream']>[0]),
    });
    this.server.on('connection', (socket: WebSocket, request: IncomingMessage) => this.serve(graphqlWs, socket, request));
  }

  /**
   * One connection, as graphql-ws's own glue for `ws` serves it, with the gateway's bounds: every message
   * checked before graphql-ws parses it (a refused one closes with 4400), what waits unsent for a client
   * that does not read at most MAX_UNSENT_BYTES (then the connection is cut), a ping every KEEP_ALIVE_MS,
   * and failures in the gateway's log, not on the console.
   */
  private serve(graphqlWs: GraphQLWsServer<Extra>, socket: WebSocket, request: IncomingMessage): void {
    const { bounds, logger } = this.options;
    const requestId = this.connections.get(request)?.exchange.state.get('requestId');
    socket.on('error', (error) => {
      logger.info({ err: error, requestId }, 'a WebSocket failed');
      socket.terminate();
    });
    let pongWait: NodeJS.Timeout | undefined;
    const pings = setInterval(() => {
      if (socket.readyState !== socket.OPEN || pongWait) return;
      pongWait = setTimeout(() => socket.terminate(), KEEP_ALIVE_MS);
      socket.once('pong', () => {
        clearTimeout(pongWait);
        pongWait = undefined;
      });
      socket.ping();
    }, KEEP_ALIVE_MS);
    const closed = graphqlWs.opened(
      {
        protocol: socket.protocol,
        send(data) {
          if (socket.readyState !== socket.OPEN) return;
          socket.send(data);
          if (socket.bufferedAmount > MAX_UNSENT_BYTES) socket.terminate();
        },
        close: (code, reason) => socket.close(code, reason),
        onMessage(handle) {
          socket.on('message', (data: Buffer, isBinary: boolean) => {
            const text = isBinary ? undefined : data.toString('utf8');
            const refusal = text === undefined ? 'a binary message' : unreadable(text, bounds);
            if (refusal !== undefined) {
              socket.close(CloseCode.BadRequest, `Invalid message: ${refusal}`);
              return;
            }
            handle(text as string).catch((error: unknown) => {
              logger.error({ err: error, requestId }, 'unexpected error on a WebSocket');
              socket.close(CloseCode.InternalServerError, 'Internal server error');
            });
          });
        },
      },
      { socket, request },
    );
    socket.once('close', (code: number, reason: Buffer) => {
      clearInterval(pings);
      clearTimeout(pongWait);
      void closed(code, reason.toString());
    });
  }

  /** Keeps an upgrade's socket until the pipeline has let it through (or refused it with an HTTP answer). */
  hold(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    this.upgrades.set(req, { socket, head });
  }

  /** Whether this request is a WebSocket upgrade the server holds. */
  isUpgrade(req: IncomingMessage): boolean {
    return this.upgrades.has(req);
  }

  /** Completes the handshake of a request the pipeline let through. */
  accept(exchange: Exchange, identity: Identity | undefined): void {
    const upgrade = this.upgrades.get(exchange.req);
    if (!upgrade) throw new Error('not an upgrade');
    this.upgrades.delete(exchange.req);
    const protocols = (exchange.req.headers['sec-websocket-protocol'] ?? '').split(',').map((protocol) => protocol.trim());
    if (!protocols.includes(PROTOCOL)) throw new GatewayError('BAD_USER_INPUT', `Ask for the ${PROTOCOL} subprotocol (Sec-WebSocket-Protocol): /graphql speaks graphql-ws`);
    const origin = exchange.req.headers.origin;
    if (origin !== undefined && !this.sameOrigin(exchange.req, origin) && !this.options.isOriginAllowed(origin)) {
      throw new GatewayError('FORBIDDEN', 'This origin may not open a WebSocket to the gateway (CORS_ORIGINS)');
    }
    this.connections.set(exchange.req, { exchange, identity, authorization: identity ? exchange.req.headers.authorization : undefined });
    // What the access line says when the connection ends.
    exchange.res.statusCode = 101;
    this.server.handleUpgrade(exchange.req, upgrade.socket, upgrade.head, (socket) => this.server.emit('connection', socket, exchange.req));
  }

  private sameOrigin(req: IncomingMessage, origin: string): boolean {
    const host = req.headers.host;
    return host !== undefined && (origin === `http://${host}` || origin === `https://${host}`);
  }

  /** Closes every connection (shutdown), with 1001: clients reconnect, to another replica. */
  close(): Promise<void> {
    for (const socket of this.server.clients) socket.close(1001, 'The gateway is shutting down');
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

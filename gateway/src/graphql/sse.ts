import type { HTTPGraphQLRequest } from '@apollo/server';
import { createHandler, type Request as SseRequest } from 'graphql-sse';
import Negotiator from 'negotiator';
import type { ExecutionResult, GraphQLSchema } from 'graphql';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Identity } from '../auth/identity.js';
import type { Exchange } from '../pipeline/pipeline.js';
import { SubscriptionRefused, type Admitted, type Subscriptions } from './subscriptions.js';

/** What a client that does not read may have waiting in this process before its stream is dropped. */
export const MAX_UNSENT_BYTES = 256 * 1024;

const EVENT_STREAM = 'text/event-stream';

/** Whether the client asks for an event stream (GraphQL over SSE) rather than one JSON answer. */
export function wantsEventStream(req: IncomingMessage): boolean {
  const accept = req.headers.accept;
  if (accept === undefined || !accept.includes(EVENT_STREAM)) return false;
  return new Negotiator(req).mediaType(['application/graphql-response+json', 'application/json', EVENT_STREAM]) === EVENT_STREAM;
}

interface Raw {
  readonly exchange: Exchange;
  readonly identity: Identity | undefined;
}

/**
 * GraphQL over SSE (the graphql-sse protocol, distinct connections mode: one subscription per request,
 * POST or GET with `Accept: text/event-stream`), served by graphql-sse's handler on the request the
 * face has read and checked (body bounds, trusted documents). The stream carries a comment line every
 * 12 s (graphql-sse's), under common proxies' idle timeouts. A client that does not read is dropped
 * once MAX_UNSENT_BYTES wait for it; on shutdown every stream is closed without `complete`, so clients
 * subscribe again (to another replica).
 */
export class EventStreams {
  private readonly open = new Set<ServerResponse>();
  private readonly handler;

  constructor(schema: GraphQLSchema, subscriptions: Subscriptions) {
    this.handler = createHandler<Raw, undefined, Admitted>({
      schema,
      // No reservations (single connection mode): every stream is its own request.
      authenticate: () => undefined,
      onSubscribe(req, params) {
        try {
          return subscriptions.admit(params, { exchange: req.raw.exchange, identity: req.raw.identity, transport: 'sse' });
        } catch (error) {
          if (!(error instanceof SubscriptionRefused)) throw error;
          return [JSON.stringify({ errors: error.errors }), { status: error.status, statusText: '', headers: { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' } }];
        }
      },
      // Checked when admitted.
      validate: () => [],
      onNext: (_context, _req, result) => subscriptions.format(result as ExecutionResult),
      subscribe: (args) => subscriptions.stream(args),
    });
  }

  /** Answers a request that wants an event stream. */
  async serve(exchange: Exchange, identity: Identity | undefined, request: HTTPGraphQLRequest): Promise<void> {
    const { res } = exchange;
    const sseRequest: SseRequest<Raw, undefined> = {
      method: request.method,
      url: `/graphql${request.search}`,
      // graphql-sse compares Accept as a whole: the face decided already that this is an event stream.
      headers: { get: (name) => (name.toLowerCase() === 'accept' ? EVENT_STREAM : (request.headers.get(name) ?? null)) },
      body: request.method === 'POST' ? ((request.body ?? null) as SseRequest['body']) : null,
      raw: { exchange, identity },
      context: undefined,
    };
    const [body, init] = await this.handler(sseRequest);
    for (const [name, value] of Object.entries(init.headers ?? {})) if (name !== 'content-encoding' && name !== 'connection') res.setHeader(name, value);
    res.statusCode = init.status;
    if (body === null || typeof body === 'string') {
      res.end(body ?? undefined);
      return;
    }
    // Proxies that buffer answers (nginx) pass this one on as it comes.
    res.setHeader('x-accel-buffering', 'no');
    res.flushHeaders();
    this.open.add(res);
    res.once('close', () => {
      this.open.delete(res);
      void body.return(undefined);
    });
    try {
      for await (const chunk of body) {
        if (res.destroyed || res.writableEnded) break;
        if (!res.write(chunk) && res.writableLength > MAX_UNSENT_BYTES) {
          res.destroy();
          break;
        }
      }
    } finally {
      this.open.delete(res);
      if (!res.destroyed) res.end();
    }
  }

  /** Closes every stream (shutdown): no `complete`, so that clients subscribe again elsewhere. */
  close(): void {
    for (const res of this.open) res.end();
    this.open.clear();
  }
}

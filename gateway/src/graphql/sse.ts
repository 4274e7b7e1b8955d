import type { HTTPGraphQLRequest } from '@apollo/server';
import { createHandler, type Request as SseRequest } from 'graphql-sse';
import Negotiator from 'negotiator';
import type { ExecutionArgs, ExecutionResult, GraphQLSchema } from 'graphql';
import { correlationMembers, sendGraphQLErrors } from '../errors.js';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Identity } from '../auth/identity.js';
import type { Exchange } from '../pipeline/pipeline.js';
import { SubscriptionRefused, type Admitted, type SubscriptionParams, type Subscriptions } from './subscriptions.js';

/** What a client that does not read may have waiting in this process before its stream is dropped. */
export const MAX_UNSENT_BYTES = 256 * 1024;

const EVENT_STREAM = 'text/event-stream';

/** Whether the client asks for an event stream (GraphQL over SSE) rather than one JSON answer. */
export function wantsEventStream(req: IncomingMessage): boolean {
  const accept = req.headers.accept?.toLowerCase();
  if (accept === undefined || !accept.includes(EVENT_STREAM)) return false;
  return new Negotiator(req).mediaType(['application/graphql-response+json', 'application/json', EVENT_STREAM]) === EVENT_STREAM;
}

interface Raw {
  readonly admitted: ExecutionArgs & { readonly contextValue: Admitted };
}

/** What the client sent, read from the request as the face read it (a POST's bounded JSON, a GET's bounded query string). */
function paramsOf(request: HTTPGraphQLRequest): SubscriptionParams {
  const refused = (message: string) => new SubscriptionRefused(400, [{ message, extensions: { code: 'BAD_REQUEST' } }]);
  if (request.method === 'POST') {
    const body = request.body as unknown;
    if (typeof body !== 'object' || body === null || Array.isArray(body)) throw refused('POST one JSON object (Content-Type: application/json) with the subscription');
    const { query, variables, operationName, extensions } = body as Record<string, unknown>;
    return { query, variables, operationName, extensions };
  }
  const search = new URLSearchParams(request.search);
  const json = (name: string): unknown => {
    const text = search.get(name);
    if (text === null) return undefined;
    try {
      return JSON.parse(text) as unknown;
    } catch {
      throw refused(`${name} must be JSON`);
    }
  };
  return { query: search.get('query') ?? undefined, variables: json('variables'), operationName: search.get('operationName') ?? undefined, extensions: json('extensions') };
}

/**
 * GraphQL over SSE (the graphql-sse protocol, distinct connections mode: one subscription per request,
 * POST or GET with `Accept: text/event-stream`), served by graphql-sse's handler on the request the
 * face has read and checked (body bounds, trusted documents) and admitted (refusals answered here, as a
 * query's are). The stream carries a comment line every 12 s (graphql-sse's), under common proxies'
 * idle timeouts. A client that does not read is dropped once MAX_UNSENT_BYTES wait for it; on shutdown
 * every stream is closed without `complete`, so clients subscribe again (to another replica).
 */
export class EventStreams {
  private readonly open = new Set<ServerResponse>();
  private readonly handler;

  constructor(
    schema: GraphQLSchema,
    private readonly subscriptions: Subscriptions,
  ) {
    this.handler = createHandler<Raw, undefined, Admitted>({
      schema,
      // No reservations (single connection mode): every stream is its own request.
      authenticate: () => undefined,
      onSubscribe: (req) => req.raw.admitted,
      // Checked when admitted.
      validate: () => [],
      onNext: (_context, _req, result) => subscriptions.format(result as ExecutionResult),
      subscribe: (args) => subscriptions.stream(args),
    });
  }

  /** Answers a request that wants an event stream. */
  async serve(exchange: Exchange, identity: Identity | undefined, request: HTTPGraphQLRequest): Promise<void> {
    const { req, res } = exchange;
    let admitted: Raw['admitted'];
    try {
      admitted = this.subscriptions.admit(paramsOf(request), { exchange, identity, transport: 'sse' });
    } catch (error) {
      if (!(error instanceof SubscriptionRefused)) throw error;
      sendGraphQLErrors(req, res, error.status, error.errors.map((each) => ({ ...each, extensions: { ...each.extensions, ...correlationMembers({ requestId: exchange.state.get('requestId') }) } })));
      return;
    }
    // graphql-sse is handed what was admitted, never the client's text to parse again.
    const sseRequest: SseRequest<Raw, undefined> = {
      method: 'POST',
      url: '/graphql',
      headers: { get: (name) => ({ accept: EVENT_STREAM, 'content-type': 'application/json' })[name.toLowerCase()] ?? null },
      body: { query: 'subscription' },
      raw: { admitted },
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
    // The request is answered: the stream goes on by itself (no pipeline step waits for it for hours,
    // each holding its frame; its end is the response's close, which the access log and metrics follow).
    void this.write(res, body);
  }

  private async write(res: ServerResponse, body: AsyncGenerator<string, void, undefined>): Promise<void> {
    try {
      for await (const chunk of body) {
        if (res.destroyed || res.writableEnded) break;
        if (!res.write(chunk) && res.writableLength > MAX_UNSENT_BYTES) {
          res.destroy();
          break;
        }
      }
    } catch {
      // The stream failed (graphql-sse's own error): the client sees its connection end, and resubscribes.
      res.destroy();
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

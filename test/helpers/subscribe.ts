import { createClient as createSseClient } from 'graphql-sse';
import { createClient as createWsClient, type Client as WsClient } from 'graphql-ws';
import WebSocket from 'ws';
import { eventually } from './wait.js';

/** What a subscription received, as its client library handed it over. */
export interface Subscribed<T = Record<string, unknown>> {
  readonly results: { readonly data?: T | null; readonly errors?: readonly { readonly message: string; readonly extensions?: Record<string, unknown> }[] }[];
  /** When each result arrived (performance.now()), in order. */
  readonly arrivals: number[];
  /** Settles when the stream ends: `error` is what the client library failed with (a close, an HTTP error). */
  readonly ended: Promise<{ readonly error?: unknown }>;
  /** The client leaves (the stream is returned). */
  stop(): Promise<void>;
  /** Until `count` results came, with what came so far in the message otherwise. */
  received(count: number, what?: string): Promise<void>;
}

export interface SubscribeOptions {
  readonly variables?: Record<string, unknown>;
  readonly headers?: Record<string, string>;
  readonly extensions?: Record<string, unknown>;
  readonly operationName?: string;
}

function collect<T>(iterator: AsyncIterableIterator<unknown>, label: string): Subscribed<T> {
  const results: Subscribed<T>['results'][number][] = [];
  const arrivals: number[] = [];
  const ended = (async () => {
    try {
      for await (const result of iterator) {
        arrivals.push(performance.now());
        results.push(result as Subscribed<T>['results'][number]);
      }
      return {};
    } catch (error) {
      return { error };
    }
  })();
  return {
    results,
    arrivals,
    ended,
    async stop() {
      await iterator.return?.();
      await ended;
    },
    received: async (count, what = `${count} results of the ${label} subscription`) => {
      await eventually(() => `${what} (${results.length} came: ${JSON.stringify(results).slice(0, 400)})`, () => results.length >= count);
    },
  };
}

/** A subscription over GraphQL over SSE (the graphql-sse client, distinct connections, no retries). */
export function sseSubscribe<T = Record<string, unknown>>(gatewayUrl: string, query: string, options: SubscribeOptions = {}): Subscribed<T> {
  const client = createSseClient({ url: `${gatewayUrl}/graphql`, retryAttempts: 0, headers: options.headers ?? {} });
  const iterator = client.iterate({ query, ...(options.variables ? { variables: options.variables } : {}), ...(options.extensions ? { extensions: options.extensions } : {}), ...(options.operationName ? { operationName: options.operationName } : {}) });
  const subscribed = collect<T>(iterator, 'SSE');
  void subscribed.ended.then(() => client.dispose());
  return subscribed;
}

export interface WsConnection {
  readonly client: WsClient;
  /** The close event, once the connection closed. */
  readonly closed: Promise<{ readonly code: number; readonly reason: string }>;
  subscribe<T = Record<string, unknown>>(query: string, options?: SubscribeOptions): Subscribed<T>;
  dispose(): Promise<void>;
}

/** A graphql-ws connection (the graphql-ws client over `ws`, no retries), with headers on its upgrade request. */
export function wsConnect(gatewayUrl: string, options: { readonly connectionParams?: Record<string, unknown>; readonly headers?: Record<string, string> } = {}): WsConnection {
  const headers = options.headers ?? {};
  class WithHeaders extends WebSocket {
    constructor(address: string, protocols?: string | string[]) {
      super(address, protocols, { headers });
    }
  }
  let closedWith: (event: { code: number; reason: string }) => void = () => undefined;
  const closed = new Promise<{ code: number; reason: string }>((resolve) => (closedWith = resolve));
  const client = createWsClient({
    url: `${gatewayUrl.replace(/^http/, 'ws')}/graphql`,
    webSocketImpl: WithHeaders,
    retryAttempts: 0,
    lazy: true,
    ...(options.connectionParams ? { connectionParams: options.connectionParams } : {}),
    on: { closed: (event) => closedWith({ code: (event as { code: number }).code, reason: String((event as { reason: unknown }).reason) }) },
  });
  return {
    client,
    closed,
    subscribe: (query, subscribeOptions = {}) =>
      collect(client.iterate({ query, ...(subscribeOptions.variables ? { variables: subscribeOptions.variables } : {}), ...(subscribeOptions.extensions ? { extensions: subscribeOptions.extensions } : {}) }), 'WebSocket'),
    dispose: () => Promise.resolve(client.dispose()),
  };
}

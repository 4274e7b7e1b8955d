import { LRUCache } from 'lru-cache';
import {
  createSourceEventStream,
  execute,
  getArgumentValues,
  getDirectiveValues,
  getOperationAST,
  getVariableValues,
  GraphQLError,
  GraphQLIncludeDirective,
  GraphQLSkipDirective,
  Kind,
  parse,
  specifiedRules,
  validate,
  type FieldNode,
  type FragmentSpreadNode,
  type InlineFragmentNode,
  type OperationDefinitionNode,
  type SelectionNode,
  type DocumentNode,
  type ExecutionArgs,
  type ExecutionResult,
  type GraphQLFormattedError,
  type GraphQLSchema,
  type ValidationRule,
} from 'graphql';
import type { Identity } from '../auth/identity.js';
import { correlationMembers, GatewayError, toGraphQLError } from '../errors.js';
import type { Logger } from '../observability/logger.js';
import type { GatewayMetrics } from '../observability/metrics.js';
import type { Exchange } from '../pipeline/pipeline.js';
import { ConcurrencyGate } from '../ratelimit/concurrency.js';
import { assertAffordable, subscriptionsOnlyRule } from './cost.js';
import { MAX_OPERATION_NAME_LENGTH, type GatewayContext } from './contract/context.js';
import { FellBehind } from './contract/live.js';
import { PullStream } from './pull-stream.js';

export type Transport = 'sse' | 'ws';

/** Why a stream ended, as its log line and metrics say. */
export type EndReason = 'complete' | 'client' | 'expired' | 'error' | 'shutdown' | 'behind';

/** What a client sent to subscribe (trusted documents already applied). */
export interface SubscriptionParams {
  readonly query?: unknown;
  readonly variables?: unknown;
  readonly operationName?: unknown;
  readonly extensions?: unknown;
}

export interface Subscriber {
  readonly exchange: Exchange;
  readonly identity: Identity | undefined;
  readonly transport: Transport;
  /** The token as the client gave it, when not in the request's Authorization header (graphql-ws's connection_init). */
  readonly authorization?: string;
}

/** A subscription refused before its stream starts: the status and errors a plain request would get. */
export class SubscriptionRefused extends Error {
  constructor(
    readonly status: number,
    readonly errors: readonly GraphQLFormattedError[],
  ) {
    super(errors[0]?.message ?? 'refused');
  }
}

/** A subscription checked and admitted: what the transports hand back to `stream` (as their contextValue). */
export type Admitted = {
  readonly subscriber: Subscriber;
  readonly release: () => void;
  readonly operationName: string;
};

/** At most this many channels per `nowPlaying`. */
export const MAX_CHANNELS_PER_SUBSCRIPTION = 50;

const MAX_TOKENS = 1000;
/**
 * The valid subscription documents kept parsed: this much of their text, this many at most (a parsed
 * document holds some ten times its text; the apps' few documents fit many times over).
 */
const MAX_DOCUMENT_BYTES = 512 * 1024;
const MAX_DOCUMENTS = 1000;

export interface SubscriptionsOptions {
  readonly schema: GraphQLSchema;
  readonly maxCost: number;
  readonly perClient: number;
  /** The validation rules of plain requests that apply to streams too (graphql-armor's). */
  readonly rules: readonly ValidationRule[];
  /** A request's context for `subscriber`, its upstream calls stopped by `signal`. */
  readonly contextFor: (subscriber: Subscriber, signal: AbortSignal) => GatewayContext;
  readonly formatError: (formatted: GraphQLFormattedError, error: unknown) => GraphQLFormattedError;
  readonly metrics: GatewayMetrics;
  readonly logger: Logger;
}

/**
 * The one field a subscription selects at its root, as execution will see it: through inline fragments
 * and fragment spreads, with @skip and @include applied (graphql-js's own rule counts fields before
 * they do, and its source stream fails on a root left with none); undefined when there is not exactly one.
 */
function rootFieldOf(document: DocumentNode, operation: OperationDefinitionNode, variables: Record<string, unknown>): FieldNode | undefined {
  const fragments = new Map(document.definitions.flatMap((definition) => (definition.kind === Kind.FRAGMENT_DEFINITION ? [[definition.name.value, definition] as const] : [])));
  const included = (node: FieldNode | InlineFragmentNode | FragmentSpreadNode) =>
    getDirectiveValues(GraphQLSkipDirective, node, variables)?.if !== true && getDirectiveValues(GraphQLIncludeDirective, node, variables)?.if !== false;
  const seen = new Set<string>();
  const collect = (selections: readonly SelectionNode[]): FieldNode[] =>
    selections.flatMap((selection) => {
      if (!included(selection)) return [];
      if (selection.kind === Kind.FIELD) return [selection];
      if (selection.kind === Kind.INLINE_FRAGMENT) return collect(selection.selectionSet.selections);
      const fragment = seen.has(selection.name.value) ? undefined : fragments.get(selection.name.value);
      seen.add(selection.name.value);
      return fragment ? collect(fragment.selectionSet.selections) : [];
    });
  const fields = collect(operation.selectionSet.selections);
  const [first] = fields;
  return first && fields.every((field) => (field.alias ?? field.name).value === (first.alias ?? first.name).value) ? first : undefined;
}

/** The arguments the root field may not exceed, with the variables as coerced: at most 50 channels a `nowPlaying`. */
function assertArgumentsBounded(schema: GraphQLSchema, field: FieldNode, variables: Record<string, unknown>): void {
  const definition = schema.getSubscriptionType()?.getFields()[field.name.value];
  if (field.name.value !== 'nowPlaying' || !definition) return;
  const { channelIds } = getArgumentValues(definition, field, variables);
  const count = Array.isArray(channelIds) ? channelIds.length : 1;
  if (count > MAX_CHANNELS_PER_SUBSCRIPTION) throw new GatewayError('BAD_USER_INPUT', `nowPlaying follows at most ${MAX_CHANNELS_PER_SUBSCRIPTION} channels; this one asks for ${count}`);
}

/** A validation message without graphql-js's "Did you mean …?" (as graphql-armor's blockFieldSuggestion does for queries): no schema names for the guessing. */
const withoutSuggestions = (message: string) => message.replace(/\s*Did you mean .*\?$/s, '');

/** An error ending a stream, as the error formatter renders it (a catalogue error keeps its code; anything else is the gateway's fault). */
function asGraphQLError(error: unknown): GraphQLError {
  if (error instanceof GraphQLError) return error;
  const original = error instanceof Error ? error : new Error(String(error));
  return new GraphQLError(original.message, { originalError: original });
}

const refusedWith = (status: number, message: string, code: string, correlation: Record<string, unknown> = {}) => new SubscriptionRefused(status, [{ message, extensions: { code, ...correlation } }]);

/**
 * GraphQL subscriptions, whatever carries them: each request checked as a plain one is (the document's
 * size, its validity, graphql-armor's limits, the cost limit, the variables), subscriptions only, within
 * SUBSCRIPTIONS_PER_CLIENT streams per client address on this replica; then each event the feed emits is
 * executed like a query, with a context of its own (fresh DataLoaders and upstream call budget, the
 * subscriber's identity, permissions field by field). A stream ends when its client leaves, its source
 * completes, its token expires (UNAUTHENTICATED, naming the expiry) or the gateway shuts down; its end is
 * counted and logged once.
 */
export class Subscriptions {
  private readonly gate: ConcurrencyGate;
  private readonly open = new Set<(reason: EndReason) => void>();
  private readonly rules: readonly ValidationRule[];
  private closing = false;
  /** Valid documents by their text, within MAX_DOCUMENT_BYTES of text (a document holds several times its text). */
  private readonly documents = new LRUCache<string, DocumentNode>({ max: MAX_DOCUMENTS, maxSize: MAX_DOCUMENT_BYTES, sizeCalculation: (_document, text) => Math.max(1, text.length) });

  constructor(private readonly options: SubscriptionsOptions) {
    this.gate = new ConcurrencyGate(options.perClient);
    this.rules = [...specifiedRules, ...options.rules, subscriptionsOnlyRule];
  }

  /** Checks a request and holds its place among the client's streams; throws SubscriptionRefused. */
  admit(params: SubscriptionParams, subscriber: Subscriber): ExecutionArgs & { readonly contextValue: Admitted } {
    const correlation = correlationMembers({ requestId: subscriber.exchange.state.get('requestId'), traceId: subscriber.exchange.state.peek('trace')?.traceId });
    const refused = (status: number, message: string, code: string) => {
      const refusal = refusedWith(status, message, code);
      for (const error of refusal.errors) Object.assign(error.extensions ?? {}, correlation);
      return refusal;
    };
    if (this.closing) throw refused(503, 'The gateway is shutting down: subscribe again', 'UPSTREAM_UNAVAILABLE');
    if (typeof params.query !== 'string' || params.query === '') throw refused(400, 'A subscription needs a query (a string)', 'BAD_REQUEST');
    if (params.operationName !== undefined && params.operationName !== null && typeof params.operationName !== 'string') throw refused(400, 'operationName must be a string', 'BAD_REQUEST');
    const variables = params.variables ?? {};
    if (typeof variables !== 'object' || variables === null || Array.isArray(variables)) throw refused(400, 'variables must be an object', 'BAD_REQUEST');
    const { extensions } = params;
    if (extensions !== undefined && extensions !== null && (typeof extensions !== 'object' || Array.isArray(extensions))) throw refused(400, 'extensions must be an object', 'BAD_REQUEST');
    const document = this.validDocument(params.query, correlation);
    const operationName = typeof params.operationName === 'string' ? params.operationName : undefined;
    const operation = getOperationAST(document, operationName);
    if (!operation) throw refused(400, 'Name the operation to run (operationName)', 'OPERATION_RESOLUTION_FAILURE');
    if (subscriber.identity && subscriber.identity.expiresAtMs <= Date.now()) {
      throw refused(401, `The token expired at ${new Date(subscriber.identity.expiresAtMs).toISOString()}: subscribe again with a fresh token`, 'UNAUTHENTICATED');
    }
    try {
      assertAffordable(this.options.schema, document, operation, variables as Record<string, unknown>, this.options.maxCost);
      const coerced = getVariableValues(this.options.schema, operation.variableDefinitions ?? [], variables as Record<string, unknown>).coerced ?? {};
      const field = rootFieldOf(document, operation, coerced);
      if (!field) throw refused(400, 'A subscription selects exactly one field at its root, once @skip and @include apply', 'GRAPHQL_VALIDATION_FAILED');
      assertArgumentsBounded(this.options.schema, field, coerced);
    } catch (error) {
      if (error instanceof SubscriptionRefused) throw error;
      const original = error instanceof GraphQLError && error.originalError ? error.originalError : error;
      if (!(original instanceof GatewayError)) throw error;
      throw new SubscriptionRefused(original.status, [toGraphQLError(original, {}, { requestId: correlation.requestId, traceId: correlation.traceId })]);
    }
    const release = this.gate.enter(subscriber.exchange.state.get('forwarded').clientKey);
    if (!release) throw refused(429, `At most ${this.options.perClient} open subscriptions per client: end one first`, 'RATE_LIMITED');
    // An SSE request carries this one subscription: however it ends, the place is given back with it.
    if (subscriber.transport === 'sse') subscriber.exchange.res.once('close', release);
    return {
      schema: this.options.schema,
      document,
      variableValues: variables as Record<string, unknown>,
      ...(operationName ? { operationName } : {}),
      contextValue: { subscriber, release, operationName: (operation.name?.value ?? '').slice(0, MAX_OPERATION_NAME_LENGTH) },
    };
  }

  /** The stream of results of an admitted subscription, or its one result when it fails at once (errors unformatted: see format). */
  async stream(args: ExecutionArgs & { readonly contextValue: Admitted }): Promise<AsyncIterableIterator<ExecutionResult> | ExecutionResult> {
    const admitted = args.contextValue;
    const { subscriber } = admitted;
    const stopped = new AbortController();
    let source: Awaited<ReturnType<typeof createSourceEventStream>>;
    try {
      source = await createSourceEventStream({ ...args, contextValue: this.options.contextFor(subscriber, stopped.signal) });
    } catch (error) {
      admitted.release();
      throw error;
    }
    if (!(Symbol.asyncIterator in source)) {
      admitted.release();
      return source;
    }
    const iterator = source[Symbol.asyncIterator]();
    const started = Date.now();
    const { transport } = subscriber;
    let events = 0;
    let reason: EndReason = 'client';
    const end = (why: EndReason, last?: ExecutionResult) => {
      if (stream.ended) return;
      reason = why;
      stream.end(last);
    };
    // One result waits at most: the next event is executed once it is taken.
    const stream: PullStream<ExecutionResult> = new PullStream(1, () => {
      clearTimeout(expiry);
      this.open.delete(end);
      stopped.abort();
      // Whatever the source's end says (an error it ended with, never read), it is over.
      void iterator.return?.()?.catch(() => undefined);
      admitted.release();
      this.options.metrics.subscriptionClosed(transport);
      this.options.logger.info(
        { requestId: subscriber.exchange.state.get('requestId'), transport, operation: admitted.operationName, events, durationMs: Date.now() - started, reason, ...(subscriber.identity ? { user: subscriber.identity.sub } : {}) },
        `subscription ended: ${reason}`,
      );
    });
    this.options.metrics.subscriptionOpened(transport);
    this.open.add(end);
    const expiresAtMs = subscriber.identity?.expiresAtMs;
    const expiry =
      expiresAtMs === undefined
        ? undefined
        : setTimeout(
            () => end('expired', { errors: [asGraphQLError(new GatewayError('UNAUTHENTICATED', `The token expired at ${new Date(expiresAtMs).toISOString()}: subscribe again with a fresh token`))] }),
            Math.min(Math.max(expiresAtMs - Date.now(), 0), 2 ** 31 - 1),
          );
    const over = stream.over();
    void (async () => {
      try {
        for (;;) {
          const next = await Promise.race([iterator.next(), over]);
          // Over from outside (the client left, or end() above): the reason is set already.
          if (!next) return;
          if (next.done) {
            end('complete');
            return;
          }
          const result = await execute({ ...args, rootValue: next.value, contextValue: this.options.contextFor(subscriber, stopped.signal) });
          if (!(await stream.put(result))) return;
          events++;
          this.options.metrics.subscriptionEvent(transport);
        }
      } catch (error) {
        const behind = error instanceof FellBehind;
        end(behind ? 'behind' : 'error', { errors: [asGraphQLError(behind ? new GatewayError('RATE_LIMITED', error.message) : error)] });
      }
    })();
    return stream;
  }

  /**
   * The query parsed and validated, once per text: apps send the same few documents, and a stream keeps
   * its document for as long as it is open (thousands of copies of one would cost ~11 KB each).
   */
  private validDocument(query: string, correlation: { readonly requestId: string; readonly traceId?: string }): DocumentNode {
    const known = this.documents.get(query);
    if (known) return known;
    let document: DocumentNode;
    try {
      document = parse(query, { maxTokens: MAX_TOKENS });
    } catch (error) {
      throw refusedWith(400, error instanceof GraphQLError ? error.message : 'The query does not parse', 'GRAPHQL_PARSE_FAILED', correlation);
    }
    let invalid: readonly GraphQLError[];
    try {
      invalid = validate(this.options.schema, document, [...this.rules], { maxErrors: 5 });
    } catch (error) {
      // graphql-js's single-root-field rule evaluates @include without the variables, and throws when one
      // is required: the document is the client's mistake all the same.
      if (!(error instanceof GraphQLError)) throw error;
      invalid = [error];
    }
    if (invalid.length > 0) {
      throw new SubscriptionRefused(400, invalid.map((error) => ({ message: withoutSuggestions(error.message), ...(error.locations ? { locations: error.locations } : {}), extensions: { code: 'GRAPHQL_VALIDATION_FAILED', ...correlation } })));
    }
    this.documents.set(query, document);
    return document;
  }

  /** How many streams are open on this replica. */
  get size(): number {
    return this.open.size;
  }

  /** Ends every stream (SIGTERM): their clients subscribe again, to another replica. */
  close(): void {
    this.closing = true;
    for (const end of [...this.open]) end('shutdown');
  }

  /**
   * A result as the client gets it, its errors rendered by the error formatter (the catalogue's codes; a
   * fault of the gateway logged). The transports call it as they send each result (their onNext).
   */
  format(result: ExecutionResult): ExecutionResult | undefined {
    if (!result.errors) return undefined;
    return { ...result, errors: result.errors.map((error) => this.options.formatError(error.toJSON(), error)) } as unknown as ExecutionResult;
  }
}

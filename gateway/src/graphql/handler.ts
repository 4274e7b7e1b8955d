import { setMaxListeners } from 'node:events';
import { ServerResponse, type IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { ApolloServer, HeaderMap, type ApolloServerPlugin, type HTTPGraphQLRequest } from '@apollo/server';
import { ApolloServerPluginCacheControlDisabled, ApolloServerPluginLandingPageDisabled } from '@apollo/server/plugin/disabled';
import { ApolloServerPluginLandingPageLocalDefault } from '@apollo/server/plugin/landingPage/default';
import { ApolloArmor } from '@escape.tech/graphql-armor';
import { MapperKind, mapSchema } from '@graphql-tools/utils';
import { GraphQLSchema, specifiedDirectives, type GraphQLFieldResolver } from 'graphql';
import type { GatewayContext } from './contract/context.js';
import resolvers from './contract/resolvers.js';
import { sourceOperations } from './contract/source.js';
import { identityOf } from '../auth/authenticate.js';
import type { Identity } from '../auth/identity.js';
import { readBody, type BodyPolicy } from '../request-body.js';
import { assertBoundedSearch, parseBoundedJson } from './request-bounds.js';
import type { GatewayConfig, GraphQLInputBounds } from '../config.js';
import { appendVary, originPolicy } from '../cors.js';
import type { TokenVerifier } from '../auth/verifier.js';
import type { RequestLimits } from '../ratelimit/index.js';
import { LiveChannels, liveRequestId } from './live.js';
import { Subscriptions } from './subscriptions.js';
import { EventStreams, wantsEventStream } from './sse.js';
import { WebSockets } from './websocket.js';
import { correlationMembers, sendGraphQLErrors } from '../errors.js';
import type { Logger } from '../observability/logger.js';
import { ANSWERED, type Exchange, type GatewayPlugin, type StepResult } from '../pipeline/pipeline.js';
import { callerOf, type Face } from '../faces.js';
import type { UpstreamClient } from '../upstream/client.js';
import { upstreamOperations } from '../routing/operations.js';
import { costLimitPlugin, onePasswordMutationRule, queriesAndMutationsOnlyRule } from './cost.js';
import { ResponseCachePolicy } from './cache-policy.js';
import { GraphQLResponseCache, MAX_STORED_RESPONSES, type StoredResponse } from './response-cache.js';
import { MAX_PERSISTED_QUERIES, MAX_PERSISTED_QUERY_BYTES, PersistedQueries } from './persisted-queries.js';
import { sharedLayer, type SharedState } from '../cluster/index.js';
import { createExplorer, wantsExplorer } from './explorer.js';
import { decide, type TrustedDocumentOutcome, type TrustedDocuments } from '../trusted-documents.js';
import { createErrorFormatter } from './errors.js';
import { apolloLogger } from './library-logs.js';
import { graphqlTracing, observabilityPlugin, operationNamesOf, type GraphQLObservers } from './observability.js';
import { loadMesh, type MeshRuntime } from './mesh.js';
import { createMeshFetch } from './mesh-fetch.js';
import { protect } from './permissions.js';

const MAX_TOKENS = 1000;

/** Limits a maintained library enforces before execution: no upstream call for an abusive query. */
const ARMOR = new ApolloArmor({
  maxAliases: { n: 15 },
  maxDepth: { n: 8 },
  maxDirectives: { n: 10 },
  // The token limit is graphql-js's own (parseOptions below): armor's parses every query a second time
  // in a plugin hook, where a syntax error became a 500.
  maxTokens: { enabled: false },
  // The cost that counts lists by their items is the gateway's own (cost.ts).
  costLimit: { enabled: false },
  blockFieldSuggestion: { enabled: true },
});

function parsedBody(text: string, contentType: string | undefined, bounds: GraphQLInputBounds): unknown {
  if (text === '') return undefined;
  if (!/^application\/(graphql-response\+)?json\s*(;|$)/i.test(contentType ?? '')) return text;
  return parseBoundedJson(text, bounds);
}

/**
 * The schema clients see: Mesh's types, without the directive definitions and AST that annotate its
 * sources for execution (they name upstream locations and headers, which are nobody else's business),
 * resolved by the contract's resolvers alone. Every other field reads its parent's property: Mesh's
 * stitched schema resolves each field through the merger (a promise per object, a 50-item list waiting
 * on 50 of them) for data that never came from a delegation.
 */
export function servedSchema(meshSchema: GraphQLSchema): GraphQLSchema {
  const plain = new GraphQLSchema({ ...meshSchema.toConfig(), directives: specifiedDirectives, astNode: undefined, extensionASTNodes: [] });
  type Resolved = GraphQLFieldResolver<unknown, GatewayContext> | { readonly subscribe: GraphQLFieldResolver<unknown, GatewayContext>; readonly resolve: GraphQLFieldResolver<unknown, GatewayContext> };
  const own = resolvers as unknown as Readonly<Record<string, Readonly<Record<string, Resolved>> | undefined>>;
  return mapSchema(plain, {
    [MapperKind.OBJECT_FIELD]: (field, fieldName, typeName) => {
      const resolver = own[typeName]?.[fieldName];
      return typeof resolver === 'object' ? { ...field, subscribe: resolver.subscribe, resolve: resolver.resolve } : { ...field, resolve: resolver };
    },
  });
}

/**
 * The request as Apollo takes it, and its body as sent (the response cache's key): the body within
 * GRAPHQL_BODY_LIMIT_BYTES, its JSON (or a GET's) within the input bounds, before Apollo or any
 * plugin walks it.
 */
async function httpGraphQLRequest({ req, res }: Exchange, policy: BodyPolicy, bounds: GraphQLInputBounds): Promise<{ request: HTTPGraphQLRequest; text: string }> {
  const headers = new HeaderMap();
  for (const [name, value] of Object.entries(req.headers)) {
    if (value !== undefined) headers.set(name, Array.isArray(value) ? value.join(', ') : value);
  }
  const queryStart = (req.url ?? '').indexOf('?');
  const search = queryStart === -1 ? '' : (req.url ?? '').slice(queryStart);
  if (req.method !== 'POST') {
    assertBoundedSearch(search, bounds);
    return { request: { method: (req.method ?? 'GET').toUpperCase(), headers, search, body: undefined }, text: '' };
  }
  const text = (await readBody(req, res, policy)).toString('utf8');
  return { request: { method: 'POST', headers, search, body: parsedBody(text, req.headers['content-type'], bounds) }, text };
}

/**
 * Apollo refuses some requests before its request pipeline starts (CSRF protection, a batch, no body:
 * code BAD_REQUEST), where no plugin sees them: their errors get the request and trace ids here.
 */
function withRequestIds(body: string, exchange: Exchange): string {
  let parsed: { errors?: { extensions?: Record<string, unknown> }[] };
  try {
    parsed = JSON.parse(body) as typeof parsed;
  } catch {
    return body;
  }
  if (!Array.isArray(parsed.errors) || parsed.errors.every((error) => error.extensions?.requestId !== undefined)) return body;
  for (const error of parsed.errors) error.extensions = { ...error.extensions, ...correlationOf(exchange) };
  return JSON.stringify(parsed);
}

/** The request and trace ids a GraphQL error of this exchange carries. */
function correlationOf(exchange: Exchange): { requestId: string; traceId?: string } {
  return correlationMembers({ requestId: exchange.state.get('requestId'), traceId: exchange.state.peek('trace')?.traceId });
}

type Refusal = Extract<TrustedDocumentOutcome, { kind: 'refused' }>;

/**
 * The request as Apollo should run it under TRUSTED_DOCUMENTS: a registered id replaced by its
 * document (the id and any APQ hash dropped), or the refusal.
 */
function withTrustedDocument(request: HTTPGraphQLRequest, trusted: TrustedDocuments): HTTPGraphQLRequest | Refusal {
  const body = request.body !== null && typeof request.body === 'object' && !Array.isArray(request.body) ? (request.body as Record<string, unknown>) : undefined;
  const search = new URLSearchParams(request.search);
  const outcome = decide(trusted, body, search);
  if (outcome.kind === 'refused') return outcome;
  if (outcome.kind === 'arbitrary') return request;
  if (request.method === 'GET') {
    search.delete('documentId');
    search.delete('extensions');
    search.set('query', outcome.query);
    return { ...request, search: `?${search.toString()}` };
  }
  const { documentId: _id, extensions, ...rest } = body ?? {};
  const { persistedQuery: _hash, ...otherExtensions } = (extensions ?? {}) as Record<string, unknown>;
  return { ...request, body: { ...rest, query: outcome.query, ...(Object.keys(otherExtensions).length > 0 ? { extensions: otherExtensions } : {}) } };
}

/** The document and extensions a request sent (a POST's body, a GET's query string; the read step bounded both). */
function sentDocument(request: HTTPGraphQLRequest): [query: unknown, extensions: unknown] {
  if (request.method !== 'GET') {
    const body = request.body as { query?: unknown; extensions?: unknown } | null;
    return [body?.query, body?.extensions];
  }
  const search = new URLSearchParams(request.search);
  try {
    return [search.get('query') ?? undefined, JSON.parse(search.get('extensions') ?? 'null')];
  } catch {
    return [undefined, undefined];
  }
}

/** Answers with a stored response, as the first request was answered, with its age. */
function replay(exchange: Exchange, stored: StoredResponse, age: number): void {
  const { res } = exchange;
  for (const [name, value] of stored.headers) {
    if (name === 'vary') appendVary(res, value);
    else res.setHeader(name, value);
  }
  res.setHeader('age', String(age));
  if (stored.operation) exchange.state.set('graphqlOperation', stored.operation);
  res.statusCode = 200;
  res.end(stored.body);
}

/** The response cache, in memory and (with REDIS_URL) in Redis, where each of its two parts (anonymous, personal) gets half the bytes. */
function responseCacheOf(config: GatewayConfig, shared: SharedState, observers: GraphQLObservers): GraphQLResponseCache {
  const { maxEntryBytes } = config.upstreamCache;
  const part = { maxBytes: Math.floor(config.graphqlResponseCacheMaxBytes / 2), maxEntryBytes, maxEntries: MAX_STORED_RESPONSES };
  const anonymous = shared.entries('graphql_response', part);
  const personal = shared.entries('graphql_response', part, 'personal');
  return new GraphQLResponseCache({
    maxBytes: config.graphqlResponseCacheMaxBytes,
    maxEntryBytes,
    invalidations: shared.invalidations,
    ...(anonymous && personal ? { shared: { anonymous, personal } } : {}),
    onLookup: (layer, result) => observers.metrics.observeSharedCacheLookup('graphql_response', layer, result),
  });
}

export interface GraphQLFace {
  readonly mesh: MeshRuntime;
  /** The live channels subscriptions follow, and the streams open on this replica. */
  readonly live: LiveChannels;
  readonly subscriptions: Subscriptions;
  /** Hands a WebSocket upgrade of /graphql to the face, which answers it through `dispatch` (the pipeline). */
  upgrade(req: IncomingMessage, socket: Duplex, head: Buffer, dispatch: (req: IncomingMessage, res: ServerResponse) => void): void;
  /** The schema as served: shield applied, Mesh annotations removed. */
  readonly schema: GraphQLSchema;
  /** The names of the steps a request to /graphql goes through, in order. */
  readonly steps: readonly string[];
  /** Answers /graphql. */
  readonly handle: Face;
  /** Stops Apollo and Mesh when the gateway closes. */
  readonly plugin: GatewayPlugin;
}

/**
 * A request to /graphql as the face's steps hand it on: the caller and the request as read (set by the
 * `read` step, before any later step runs), and how to keep the answer when the response cache may.
 */
class GraphQLTurn {
  identity: Identity | undefined;
  request!: HTTPGraphQLRequest;
  text = '';
  keep: ((answer: Parameters<GraphQLResponseCache['offer']>[1]) => void) | undefined;

  constructor(readonly exchange: Exchange) {}
}

/** One step of the GraphQL face: answers the request (ANSWERED), or hands it on to the next. */
interface GraphQLStep {
  readonly name: string;
  run(turn: GraphQLTurn): StepResult | Promise<StepResult>;
}

/**
 * `/graphql`: the Mesh-built schema behind graphql-shield, served by Apollo Server on the gateway's own
 * HTTP server (executeHTTPGraphQLRequest). The caller is the one the pipeline authenticated; a token
 * that was sent and refused fails the whole request (it never quietly becomes an anonymous one). Every
 * upstream call goes through the upstream client, as Mesh's fetch.
 */
/** What the GraphQL face works with, besides the configuration. */
export interface GraphQLFaceParts {
  readonly client: UpstreamClient;
  readonly shared: SharedState;
  /** For tokens a WebSocket's connection_init carries. */
  readonly verifier: TokenVerifier;
  /** RATE_LIMIT_PER_MINUTE, for what is no HTTP request of its own (a WebSocket's subscribe messages). */
  readonly requestLimits?: RequestLimits;
  readonly logger: Logger;
  readonly observers: GraphQLObservers;
}

export async function createGraphQLFace(config: GatewayConfig, { client, shared, verifier, requestLimits, logger, observers }: GraphQLFaceParts): Promise<GraphQLFace> {
  const mesh = await loadMesh(config.upstreams, createMeshFetch(client, config.upstreams, upstreamOperations(), config.upstreamResponseLimitBytes), logger);
  const { tracing } = observers;
  observers.metrics.reserveOperationNames(operationNamesOf(config.trustedDocuments));
  const sources = sourceOperations(mesh.rawSources);
  const schema = protect(servedSchema(mesh.schema));
  const armor = ARMOR.protect();
  const formatError = createErrorFormatter(logger);

  const persistedQueries =
    config.persistedQueries.maxBytes > 0
      ? new PersistedQueries({
          ...config.persistedQueries,
          ...sharedLayer(shared.entries('persisted_queries', { maxBytes: config.persistedQueries.maxBytes, maxEntryBytes: MAX_PERSISTED_QUERY_BYTES, maxEntries: MAX_PERSISTED_QUERIES })),
          onLookup: (layer, result) => observers.metrics.observeSharedCacheLookup('persisted_queries', layer, result),
        })
      : undefined;

  const apollo = new ApolloServer<GatewayContext>({
    schema,
    introspection: config.graphqlIntrospection,
    csrfPrevention: true,
    // The gateway drains and stops on SIGTERM itself; Apollo's own handler would re-raise the signal
    // and kill the process with requests still in flight.
    stopOnTerminationSignals: false,
    includeStacktraceInErrorResponses: false,
    allowBatchedHttpRequests: false,
    persistedQueries: persistedQueries ? { cache: persistedQueries } : false,
    // Over 1000 tokens the parser stops: a 400 GRAPHQL_PARSE_FAILED, like any query that does not parse.
    parseOptions: { maxTokens: MAX_TOKENS },
    validationRules: [...armor.validationRules, onePasswordMutationRule, queriesAndMutationsOnlyRule],
    formatError,
    plugins: [
      ...(armor.plugins as unknown as ApolloServerPlugin<GatewayContext>[]),
      observabilityPlugin(observers),
      // The response's Cache-Control comes from the upstream answers (cache-policy.ts), not from schema hints.
      ApolloServerPluginCacheControlDisabled(),
      costLimitPlugin<GatewayContext>(config.graphqlMaxCost),
      config.graphqlIntrospection ? ApolloServerPluginLandingPageLocalDefault({ embed: true, includeCookies: false }) : ApolloServerPluginLandingPageDisabled(),
    ],
    logger: apolloLogger(logger),
  });
  await apollo.start();

  function contextFor(exchange: Exchange, identity: Identity | undefined): GatewayContext {
    const cancel = new AbortController();
    // Each upstream call in flight listens to it: up to GRAPHQL_MAX_UPSTREAM_CALLS at once is expected.
    setMaxListeners(config.graphqlMaxUpstreamCalls + 10, cancel.signal);
    exchange.res.once('close', () => cancel.abort());
    const trace = exchange.state.peek('trace');
    return {
      requestId: exchange.state.get('requestId'),
      ...(trace ? { traceId: trace.traceId } : {}),
      reportOperation: (operation) => exchange.state.set('graphqlOperation', operation),
      ...(tracing && trace?.span?.isRecording() ? { tracing: graphqlTracing(tracing, trace.span) } : {}),
      sources,
      caller: callerOf(exchange, identity),
      ...(identity ? { user: identity } : {}),
      budget: { limit: config.graphqlMaxUpstreamCalls, used: 0 },
      cachePolicy: new ResponseCachePolicy(),
      signal: cancel.signal,
    };
  }

  // The feed's own reads: no client's identity, stopped when the gateway closes.
  const feedStopped = new AbortController();
  // Every read in flight listens to it (two calls a read, reads of many channels at once).
  setMaxListeners(0, feedStopped.signal);
  const live = new LiveChannels({
    invalidations: shared.invalidations,
    logger,
    context: () => {
      const requestId = liveRequestId();
      return { requestId, reportOperation: () => undefined, sources, caller: { requestId }, budget: { limit: 4, used: 0 }, cachePolicy: new ResponseCachePolicy(), signal: feedStopped.signal };
    },
  });
  const subscriptions = new Subscriptions({
    schema,
    maxCost: config.graphqlMaxCost,
    perClient: config.subscriptions.perClient,
    rules: armor.validationRules,
    formatError,
    metrics: observers.metrics,
    logger,
    contextFor: ({ exchange, identity, authorization }, signal) => {
      const trace = exchange.state.peek('trace');
      // A stream's upstream calls are not listed on its one access line: over hours they would pile up.
      const { attempts: _attempts, ...caller } = callerOf(exchange, identity);
      return {
        requestId: exchange.state.get('requestId'),
        ...(trace ? { traceId: trace.traceId } : {}),
        reportOperation: () => undefined,
        sources,
        caller: { ...caller, ...(authorization !== undefined ? { authorization } : {}) },
        ...(identity ? { user: identity } : {}),
        budget: { limit: config.graphqlMaxUpstreamCalls, used: 0 },
        cachePolicy: new ResponseCachePolicy(),
        signal,
        live,
      };
    },
  });
  const eventStreams = new EventStreams(schema, subscriptions);
  const webSockets = new WebSockets({
    schema,
    subscriptions,
    verifier,
    trusted: config.trustedDocuments,
    maxMessageBytes: config.graphqlInputs.bodyLimitBytes,
    bounds: config.graphqlInputs,
    logger,
    perConnection: config.subscriptions.perConnection,
    isOriginAllowed: originPolicy(config.corsOrigins),
    ...(requestLimits ? { requestLimits } : {}),
  });

  const responseCache = config.graphqlResponseCacheMaxBytes > 0 && client.cache ? responseCacheOf(config, shared, observers) : undefined;
  const explorer = config.graphqlIntrospection ? createExplorer() : undefined;
  const bodyPolicy: BodyPolicy = { ...config.body, limitBytes: Math.min(config.body.limitBytes, config.graphqlInputs.bodyLimitBytes) };

  // The face's steps, in order: each answers the request (ANSWERED) or hands it on.
  const steps: readonly GraphQLStep[] = [
    {
      name: 'websocket',
      run(turn) {
        if (!webSockets.isUpgrade(turn.exchange.req)) return undefined;
        // A refused token fails the upgrade with its HTTP answer; a browser's comes in connection_init.
        webSockets.accept(turn.exchange, identityOf(turn.exchange.state.get('auth'), false));
        return ANSWERED;
      },
    },
    {
      name: 'explorer',
      run: (turn) => (explorer && wantsExplorer(turn.exchange) ? explorer(turn.exchange).then(() => ANSWERED) : undefined),
    },
    {
      name: 'read',
      async run(turn) {
        // The media type of every answer follows Accept: a cache in front must keep them apart.
        appendVary(turn.exchange.res, 'accept');
        // A refused token fails the whole request here, before the body is read.
        turn.identity = identityOf(turn.exchange.state.get('auth'), false);
        ({ request: turn.request, text: turn.text } = await httpGraphQLRequest(turn.exchange, bodyPolicy, config.graphqlInputs));
        return undefined;
      },
    },
    {
      name: 'trusted-documents',
      run(turn) {
        if (!config.trustedDocuments) return undefined;
        const request = withTrustedDocument(turn.request, config.trustedDocuments);
        if (!('kind' in request)) {
          turn.request = request;
          return undefined;
        }
        // A GraphQL request error, as Apollo's own (GRAPHQL_PARSE_FAILED…): 400, no data, the request id.
        sendGraphQLErrors(turn.exchange.req, turn.exchange.res, 400, [{ message: request.message, extensions: { code: request.code, ...correlationOf(turn.exchange) } }]);
        return ANSWERED;
      },
    },
    {
      name: 'event-stream',
      async run(turn) {
        if (!wantsEventStream(turn.exchange.req)) return undefined;
        await eventStreams.serve(turn.exchange, turn.identity, turn.request);
        return ANSWERED;
      },
    },
    {
      name: 'response-cache',
      async run(turn) {
        const { req } = turn.exchange;
        // A token is always verified before this step (a refused one failed the `read` step): only a verified caller's is keyed by it.
        if (!responseCache || (turn.identity === undefined && req.headers.authorization !== undefined)) return undefined;
        const key = responseCache.keyOf(turn.request.method, req.headers, turn.request.search, turn.text, turn.identity);
        const lookedUpAt = responseCache.generations();
        const found = await responseCache.get(key);
        if (!found) {
          turn.keep = (answer) => responseCache.offer(key, answer, lookedUpAt);
          return undefined;
        }
        const { stored, layer } = found;
        turn.exchange.state.set('cacheLayer', layer);
        persistedQueries?.registerSent(...sentDocument(turn.request));
        replay(turn.exchange, stored, responseCache.ageOf(stored));
        observers.metrics.observeGraphQLOperation(stored.operation?.name, stored.operation?.type ?? 'unknown', 'success', []);
        return ANSWERED;
      },
    },
    {
      name: 'execution',
      async run({ exchange, identity, request, keep }): Promise<StepResult> {
        const { res } = exchange;
        let context: GatewayContext | undefined;
        const response = await apollo.executeHTTPGraphQLRequest({
          httpGraphQLRequest: request,
          context: () => Promise.resolve((context = contextFor(exchange, identity))),
        });
        for (const [name, value] of response.headers) {
          if (name === 'vary') appendVary(res, value);
          else res.setHeader(name, value);
        }
        res.statusCode = response.status ?? 200;
        if (response.body.kind === 'complete') {
          res.end(res.statusCode >= 400 ? withRequestIds(response.body.string, exchange) : response.body.string);
          if (keep && context && res.statusCode === 200) {
            keep({ headers: [...response.headers], body: response.body.string, operation: exchange.state.peek('graphqlOperation'), upstreams: context.cachePolicy.upstreams });
          }
          return ANSWERED;
        }
        for await (const chunk of response.body.asyncIterator) res.write(chunk);
        res.end();
        return ANSWERED;
      },
    },
  ];

  const stop = async () => {
    feedStopped.abort();
    await webSockets.close();
    await apollo.stop();
    mesh.destroy();
  };
  // Streams end when the gateway stops taking requests: their clients subscribe again elsewhere.
  const endStreams = () => {
    // Their reason first (shutdown); then the connections go, before any `complete` could be sent.
    subscriptions.close();
    eventStreams.close();
    void webSockets.close();
    live.close();
  };

  return {
    mesh,
    live,
    subscriptions,
    upgrade(req, socket, head, dispatch) {
      webSockets.hold(req, socket, head);
      const res = new ServerResponse(req);
      // An answer other than the handshake (a 401, a 429) ends the connection.
      res.shouldKeepAlive = false;
      res.assignSocket(socket as Socket);
      dispatch(req, res);
    },
    schema,
    steps: steps.map((step) => step.name),
    async handle(exchange) {
      const turn = new GraphQLTurn(exchange);
      for (const step of steps) if ((await step.run(turn)) === ANSWERED) return;
      throw new Error('no step of the GraphQL face answered the request');
    },
    plugin: { name: 'graphql', onClosing: endStreams, onClose: stop },
  };
}

import { ApolloServer, HeaderMap, type ApolloServerPlugin, type HTTPGraphQLRequest } from '@apollo/server';
import { ApolloServerPluginCacheControlDisabled, ApolloServerPluginLandingPageDisabled } from '@apollo/server/plugin/disabled';
import { ApolloServerPluginLandingPageLocalDefault } from '@apollo/server/plugin/landingPage/default';
import { ApolloArmor } from '@escape.tech/graphql-armor';
import type { MeshInstance } from '@graphql-mesh/runtime';
import { GraphQLSchema, specifiedDirectives } from 'graphql';
import { applyMiddleware } from 'graphql-middleware';
import type { GatewayContext } from '../../../mesh/context.js';
import { sourceOperations } from '../../../mesh/source.js';
import { identityOf } from '../auth/authenticate.js';
import type { Identity } from '../auth/identity.js';
import { readBody, type BodyPolicy } from '../request-body.js';
import type { GatewayConfig } from '../config.js';
import { appendVary } from '../cors.js';
import { GatewayError } from '../errors.js';
import type { Logger } from '../observability/logger.js';
import type { Exchange } from '../pipeline/pipeline.js';
import type { Face } from '../routing.js';
import { callerOf } from '../upstream/call.js';
import type { UpstreamClient } from '../upstream/client.js';
import { upstreamOperations } from '../upstream/operations.js';
import { costLimitPlugin, onePasswordMutationRule } from './cost.js';
import { ResponseCachePolicy } from './cache-policy.js';
import { createErrorFormatter } from './errors.js';
import { apolloLogger } from './library-logs.js';
import { graphqlTracing, observabilityPlugin, type GraphQLObservers } from './observability.js';
import { loadMesh } from './mesh.js';
import { createMeshFetch } from './mesh-fetch.js';
import { permissions } from './permissions.js';

/** Limits a maintained library enforces before execution: no upstream call for an abusive query. */
const ARMOR = new ApolloArmor({
  maxAliases: { n: 15 },
  maxDepth: { n: 8 },
  maxDirectives: { n: 10 },
  maxTokens: { n: 1000 },
  // The cost that counts lists by their items is the gateway's own (cost.ts).
  costLimit: { enabled: false },
  blockFieldSuggestion: { enabled: true },
});

function parsedBody(text: string, contentType: string | undefined): unknown {
  if (text === '') return undefined;
  if (!/^application\/(graphql-response\+)?json\b/i.test(contentType ?? '')) return text;
  try {
    return JSON.parse(text) as unknown;
  } catch (error) {
    throw new GatewayError('BAD_USER_INPUT', 'The request body is not valid JSON', { cause: error });
  }
}

/**
 * The schema clients see: Mesh's, without the directive definitions and AST that annotate its sources
 * for execution (they name upstream locations and headers, which are nobody else's business).
 */
export function servedSchema(meshSchema: GraphQLSchema): GraphQLSchema {
  return new GraphQLSchema({ ...meshSchema.toConfig(), directives: specifiedDirectives, astNode: undefined, extensionASTNodes: [] });
}

async function httpGraphQLRequest({ req, res }: Exchange, policy: BodyPolicy): Promise<HTTPGraphQLRequest> {
  const headers = new HeaderMap();
  for (const [name, value] of Object.entries(req.headers)) {
    if (value !== undefined) headers.set(name, Array.isArray(value) ? value.join(', ') : value);
  }
  const queryStart = (req.url ?? '').indexOf('?');
  return {
    method: (req.method ?? 'GET').toUpperCase(),
    headers,
    search: queryStart === -1 ? '' : (req.url ?? '').slice(queryStart),
    body: req.method === 'POST' ? parsedBody((await readBody(req, res, policy)).toString('utf8'), req.headers['content-type']) : undefined,
  };
}

export interface GraphQLFace {
  readonly mesh: MeshInstance;
  /** The schema as served: shield applied, Mesh annotations removed. */
  readonly schema: GraphQLSchema;
  /** Answers /graphql. */
  readonly handle: Face;
  stop(): Promise<void>;
}

/**
 * `/graphql`: the Mesh-built schema behind graphql-shield, served by Apollo Server on the gateway's own
 * HTTP server (executeHTTPGraphQLRequest). The caller is the one the pipeline authenticated; a token
 * that was sent and refused fails the whole request (it never quietly becomes an anonymous one). Every
 * upstream call goes through the upstream client, as Mesh's fetch.
 */
export async function createGraphQLFace(config: GatewayConfig, client: UpstreamClient, logger: Logger, observers: GraphQLObservers): Promise<GraphQLFace> {
  const mesh = await loadMesh(config.upstreams, createMeshFetch(client, config.upstreams, upstreamOperations(), config.upstreamResponseLimitBytes), logger);
  const { tracing } = observers;
  const sources = sourceOperations(mesh.rawSources);
  const schema = applyMiddleware(servedSchema(mesh.schema), permissions);
  const armor = ARMOR.protect();

  const apollo = new ApolloServer<GatewayContext>({
    schema,
    introspection: config.graphqlIntrospection,
    csrfPrevention: true,
    // The gateway drains and stops on SIGTERM itself; Apollo's own handler would re-raise the signal
    // and kill the process with requests still in flight.
    stopOnTerminationSignals: false,
    includeStacktraceInErrorResponses: false,
    allowBatchedHttpRequests: false,
    validationRules: [...armor.validationRules, onePasswordMutationRule],
    formatError: createErrorFormatter(logger),
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

  function contextFor(exchange: Exchange, identity: Identity | undefined): Promise<GatewayContext> {
    const cancel = new AbortController();
    exchange.res.once('close', () => cancel.abort());
    const trace = exchange.state.peek('trace');
    return Promise.resolve({
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
    });
  }

  return {
    mesh,
    schema,
    async handle(exchange) {
      const { res } = exchange;
      // A refused token fails the whole request here, before the body is read.
      const identity = identityOf(exchange.state.get('auth'), false);
      const response = await apollo.executeHTTPGraphQLRequest({
        httpGraphQLRequest: await httpGraphQLRequest(exchange, config.body),
        context: () => contextFor(exchange, identity),
      });
      for (const [name, value] of response.headers) {
        if (name === 'vary') appendVary(res, value);
        else res.setHeader(name, value);
      }
      res.statusCode = response.status ?? 200;
      if (response.body.kind === 'complete') {
        res.end(response.body.string);
        return;
      }
      for await (const chunk of response.body.asyncIterator) res.write(chunk);
      res.end();
    },
    async stop() {
      await apollo.stop();
      mesh.destroy();
    },
  };
}

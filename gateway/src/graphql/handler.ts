import type { IncomingMessage, ServerResponse } from 'node:http';
import { ApolloServer, HeaderMap, type ApolloServerPlugin, type HTTPGraphQLRequest } from '@apollo/server';
import { ApolloServerPluginLandingPageDisabled } from '@apollo/server/plugin/disabled';
import { ApolloServerPluginLandingPageLocalDefault } from '@apollo/server/plugin/landingPage/default';
import { ApolloArmor } from '@escape.tech/graphql-armor';
import type { MeshInstance } from '@graphql-mesh/runtime';
import { GraphQLError, GraphQLSchema, specifiedDirectives } from 'graphql';
import { applyMiddleware } from 'graphql-middleware';
import type { GatewayConfig } from '../config.js';
import { assertDeclaredLength, isBodyTooLarge, limitedBody, payloadTooLarge } from '../body-limit.js';
import { appendVary } from '../cors.js';
import { ERROR_KINDS, GatewayError } from '../errors.js';
import type { Logger } from '../observability/logger.js';
import type { RequestContext } from '../request-context.js';
import type { GatewayMetrics } from '../observability/metrics.js';
import type { GatewayContext } from '../../../mesh/context.js';
import { createErrorFormatter } from './errors.js';
import { loadMesh } from './mesh.js';
import { permissions } from './permissions.js';
import { createUpstreamFetch } from './upstream-fetch.js';

export const GRAPHQL_PATH = '/graphql';

/** Limits a maintained library enforces before execution: no upstream call for an abusive query. */
const ARMOR = new ApolloArmor({
  maxAliases: { n: 15 },
  maxDepth: { n: 8 },
  maxDirectives: { n: 10 },
  maxTokens: { n: 1000 },
  costLimit: { maxCost: 5000 },
  blockFieldSuggestion: { enabled: true },
});

/** Adds the request id to every error, so a client can quote it (formatError cannot see the context). */
const requestIdPlugin: ApolloServerPlugin<GatewayContext> = {
  async requestDidStart() {
    return {
      async willSendResponse({ response, contextValue }) {
        if (response.body.kind !== 'single') return;
        for (const error of response.body.singleResult.errors ?? []) {
          (error.extensions as Record<string, unknown>).requestId = contextValue.requestId;
        }
      },
    };
  },
};

async function readBody(req: IncomingMessage, limit: number): Promise<string> {
  assertDeclaredLength(req.headers, limit);
  const chunks: Buffer[] = [];
  try {
    for await (const chunk of limitedBody(req, limit)) chunks.push(chunk);
  } catch (error) {
    throw isBodyTooLarge(error) ? payloadTooLarge(limit) : error;
  }
  return Buffer.concat(chunks).toString('utf8');
}

function parsedBody(text: string, contentType: string | undefined): unknown {
  if (text === '') return undefined;
  if (!/^application\/(graphql-response\+)?json\b/i.test(contentType ?? '')) return text;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw new GatewayError('BAD_REQUEST', 'The request body is not valid JSON');
  }
}

/**
 * The schema clients see: Mesh's, without the directive definitions and AST that annotate its sources
 * for execution (they name upstream locations and headers, which are nobody else's business).
 */
export function servedSchema(meshSchema: GraphQLSchema): GraphQLSchema {
  return new GraphQLSchema({ ...meshSchema.toConfig(), directives: specifiedDirectives, astNode: undefined, extensionASTNodes: [] });
}

export interface GraphQLEndpoint {
  readonly mesh: MeshInstance;
  /** The schema as served: shield applied, Mesh annotations removed. */
  readonly schema: GraphQLSchema;
  handle(req: IncomingMessage, res: ServerResponse, context: RequestContext): Promise<void>;
  stop(): Promise<void>;
}

/**
 * `/graphql`: the Mesh-built schema behind graphql-shield, served by Apollo Server on the gateway's
 * own HTTP server (executeHTTPGraphQLRequest); the caller is the request's, verified as for REST.
 */
export async function createGraphQLEndpoint(config: GatewayConfig, metrics: GatewayMetrics, logger: Logger): Promise<GraphQLEndpoint> {
  const upstreamFetch = createUpstreamFetch(config.upstreams, config.upstreamTimeoutMs, metrics);
  const mesh = await loadMesh(config.upstreams, upstreamFetch.fetch, logger);
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
    validationRules: armor.validationRules,
    formatError: createErrorFormatter(logger),
    plugins: [
      ...(armor.plugins as unknown as ApolloServerPlugin<GatewayContext>[]),
      requestIdPlugin,
      config.graphqlIntrospection ? ApolloServerPluginLandingPageLocalDefault({ embed: true, includeCookies: false }) : ApolloServerPluginLandingPageDisabled(),
    ],
    logger: {
      debug: (message) => logger.debug(message),
      info: (message) => logger.debug(message),
      warn: (message) => logger.warn(message),
      error: (message) => logger.error(message),
    },
  });
  await apollo.start();

  async function contextFor(req: IncomingMessage, { requestId, authenticate }: RequestContext): Promise<GatewayContext> {
    let identity;
    try {
      identity = await authenticate();
    } catch (error) {
      // An invalid token fails the whole request: it never quietly becomes an anonymous one.
      // Apollo answers a failed context without running plugins: the request id goes in here.
      if (!(error instanceof GatewayError)) throw error;
      throw new GraphQLError(error.detail, {
        extensions: { code: ERROR_KINDS[error.kind].code, requestId, http: { status: error.status, headers: new HeaderMap(Object.entries(error.headers)) } },
      });
    }
    const user = identity ? { sub: identity.sub, roles: identity.roles, rolesHeader: identity.roles.join(',') } : undefined;
    const headers = { authorization: req.headers.authorization };
    const { contextFactory } = mesh.getEnveloped({ req });
    return (await contextFactory({ requestId, headers, ...(user ? { user } : {}) })) as unknown as GatewayContext;
  }

  return {
    mesh,
    schema,
    async handle(req, res, context) {
      const headers = new HeaderMap();
      for (const [name, value] of Object.entries(req.headers)) {
        if (value !== undefined) headers.set(name, Array.isArray(value) ? value.join(', ') : value);
      }
      const queryStart = (req.url ?? '').indexOf('?');
      const httpGraphQLRequest: HTTPGraphQLRequest = {
        method: (req.method ?? 'GET').toUpperCase(),
        headers,
        search: queryStart === -1 ? '' : (req.url ?? '').slice(queryStart),
        body: req.method === 'POST' ? parsedBody(await readBody(req, config.bodyLimitBytes), req.headers['content-type']) : undefined,
      };
      const response = await apollo.executeHTTPGraphQLRequest({ httpGraphQLRequest, context: () => contextFor(req, context) });
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
      await upstreamFetch.close();
    },
  };
}

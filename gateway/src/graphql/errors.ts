import { GraphQLError, type GraphQLFormattedError } from 'graphql';
import { GatewayError, GRAPHQL_REQUEST_CODES, internalError, toGraphQLError } from '../errors.js';
import type { Logger } from '../observability/logger.js';

/**
 * Apollo's and graphql-js's own request errors (a query that does not parse or validate, variables of
 * the wrong type, a missing query): the client's mistake, worded by the GraphQL tooling.
 */
const REQUEST_ERROR_CODES: ReadonlySet<string> = new Set<string>([...Object.keys(GRAPHQL_REQUEST_CODES), 'BAD_USER_INPUT']);

/**
 * The code of a request error (outside execution): Apollo's or graphql-js's own, or BAD_REQUEST for one
 * Apollo raises with a 4xx status and no code (an APQ hash that does not match its query). Undefined for
 * anything else.
 */
function requestErrorCode(error: unknown, formatted: GraphQLFormattedError): string | undefined {
  if (!(error instanceof GraphQLError) || error.path !== undefined) return undefined;
  const code = formatted.extensions?.code;
  if (typeof code === 'string' && REQUEST_ERROR_CODES.has(code)) return code;
  const status = (error.extensions.http as { status?: unknown } | undefined)?.status;
  return error.extensions.code === undefined && typeof status === 'number' && status >= 400 && status < 500 ? 'BAD_REQUEST' : undefined;
}

/**
 * Apollo's formatError: unwraps the resolver error once and renders the catalogue's kind. Apollo's own
 * request errors pass as they are; anything else is a fault of the gateway, logged with its cause and
 * shown as a bare INTERNAL_SERVER_ERROR.
 */
export function createErrorFormatter(logger: Logger): (formatted: GraphQLFormattedError, error: unknown) => GraphQLFormattedError {
  return (formatted, error) => {
    const original = error instanceof GraphQLError && error.originalError ? error.originalError : error;
    if (original instanceof GatewayError && original.code !== 'INTERNAL_SERVER_ERROR') return toGraphQLError(original, formatted);
    const code = requestErrorCode(original, formatted);
    if (code !== undefined) return { message: formatted.message, ...(formatted.locations ? { locations: formatted.locations } : {}), extensions: { code } };
    const internal = original instanceof GatewayError ? original : internalError(original);
    logger.error({ err: internal.cause ?? internal, path: formatted.path }, 'unexpected GraphQL error');
    return toGraphQLError(internal, formatted);
  };
}

/**
 * A catalogue error raised outside execution (a plugin refusing the operation), as Apollo takes it:
 * with the kind's HTTP status; `formatError` renders the kind itself.
 */
export function requestError(error: GatewayError): GraphQLError {
  return new GraphQLError(error.detail, { originalError: error, extensions: { http: { status: error.status } } });
}

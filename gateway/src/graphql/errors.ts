import type { GraphQLFormattedError } from 'graphql';
import { unwrapResolverError } from '@apollo/server/errors';
import { ERROR_KINDS, GatewayError } from '../errors.js';
import type { Logger } from '../observability/logger.js';
import { UpstreamHttpError } from '../upstream/errors.js';

/** Codes whose messages are the gateway's own or the client's mistake, safe to show as they are. */
const PASS_THROUGH_CODES = new Set([
  ERROR_KINDS.UNAUTHENTICATED.code,
  ERROR_KINDS.FORBIDDEN.code,
  'GRAPHQL_PARSE_FAILED',
  'GRAPHQL_VALIDATION_FAILED',
  'BAD_USER_INPUT',
  'BAD_REQUEST',
  'OPERATION_RESOLUTION_FAILURE',
  'PERSISTED_QUERY_NOT_FOUND',
  'PERSISTED_QUERY_NOT_SUPPORTED',
]);

function codeForStatus(status: number): string {
  if (status === 401) return ERROR_KINDS.UNAUTHENTICATED.code;
  if (status === 403) return ERROR_KINDS.FORBIDDEN.code;
  if (status === 404) return ERROR_KINDS.NOT_FOUND.code;
  if (status === 504) return ERROR_KINDS.UPSTREAM_TIMEOUT.code;
  if (status >= 500) return ERROR_KINDS.UPSTREAM_UNAVAILABLE.code;
  return ERROR_KINDS.BAD_REQUEST.code;
}

function findCause(error: unknown): unknown {
  let current = unwrapResolverError(error);
  for (let depth = 0; depth < 5 && current instanceof Error; depth++) {
    if (current instanceof UpstreamHttpError || current instanceof GatewayError) return current;
    const next = (current as { originalError?: unknown }).originalError ?? current.cause;
    if (next === undefined || next === current) break;
    current = next;
  }
  return current;
}

/**
 * One formatter for every GraphQL error: the contract's `extensions.code`, the same kinds as REST
 * problems, and nothing of an upstream's internals (hosts, URLs, stack traces) in the message.
 * Errors it cannot place are logged in full and shown as a bare INTERNAL_SERVER_ERROR.
 */
export function createErrorFormatter(logger: Logger): (formatted: GraphQLFormattedError, error: unknown) => GraphQLFormattedError {
  return (formatted, error) => formatGraphQLError(formatted, error, logger);
}

function formatGraphQLError(formatted: GraphQLFormattedError, error: unknown, logger: Logger): GraphQLFormattedError {
  const cause = findCause(error);
  const base = { ...(formatted.locations ? { locations: formatted.locations } : {}), ...(formatted.path ? { path: formatted.path } : {}) };
  if (cause instanceof UpstreamHttpError) {
    return { ...base, message: cause.detail, extensions: { code: codeForStatus(cause.status), ...(cause.errors ? { errors: cause.errors } : {}) } };
  }
  if (cause instanceof GatewayError) {
    return { ...base, message: cause.detail, extensions: { code: ERROR_KINDS[cause.kind].code } };
  }
  const { code, requestId } = formatted.extensions ?? {};
  if (typeof code === 'string' && PASS_THROUGH_CODES.has(code)) {
    // A request-level error (a bad token) already carries its request id: plugins never see it.
    return { ...base, message: formatted.message, extensions: { code, ...(typeof requestId === 'string' ? { requestId } : {}) } };
  }
  logger.error({ err: cause, path: formatted.path }, 'unexpected GraphQL error');
  return { ...base, message: 'Internal server error', extensions: { code: ERROR_KINDS.INTERNAL.code } };
}

import type { ApolloServerPlugin } from '@apollo/server';
import { getVariableValues, GraphQLError, Kind, type DocumentNode, type FieldNode, type GraphQLCompositeType, type GraphQLSchema, type OperationDefinitionNode, type SelectionNode, type ValidationContext, type ASTVisitor } from 'graphql';
import { getComplexity, type ComplexityEstimator } from 'graphql-query-complexity';
import { GatewayError } from '../errors.js';
import { requestError } from './errors.js';

/**
 * How many items a list field stands for, when a query does not say: its `limit` argument, else what
 * the upstream answers by default (the specs' `limit` defaults), else how many there are (channels,
 * plans, a channel's programmes over 24 hours).
 */
const LIST_SIZES: Readonly<Record<string, (args: Record<string, unknown>) => number>> = {
  'Query.movies': (args) => (typeof args.limit === 'number' ? args.limit : 20),
  'Query.search': (args) => (typeof args.limit === 'number' ? args.limit : 10),
  'Query.adminUsers': (args) => (typeof args.limit === 'number' ? args.limit : 20),
  'Query.channels': () => 25,
  'Query.plans': () => 5,
  'Channel.schedule': () => 50,
  'Subscription.nowPlaying': (args) => (Array.isArray(args.channelIds) ? args.channelIds.length : 1),
};

/** Every field costs 1, and what is selected under a list costs once per item the list stands for. */
const listAwareEstimator: ComplexityEstimator = ({ type, field, args, childComplexity }) => {
  const size = LIST_SIZES[`${(type as GraphQLCompositeType).name}.${field.name}`]?.(args) ?? 1;
  return 1 + childComplexity * size;
};

/** Variable errors reported before coercion stops: one is enough to fix, a few help. */
const MAX_VARIABLE_ERRORS = 5;

/**
 * The operation's variables coerced as graphql-js will at execution, stopping after a few errors: a
 * list of 50,000 wrongly typed values is refused at the sixth, not described value by value. The
 * client's mistake is a 400 BAD_USER_INPUT naming the first errors, as Apollo words its own.
 */
function assertVariablesCoerce(schema: GraphQLSchema, operation: OperationDefinitionNode, variables: Record<string, unknown>): void {
  const { errors } = getVariableValues(schema, operation.variableDefinitions ?? [], variables, { maxErrors: MAX_VARIABLE_ERRORS });
  if (!errors || errors.length === 0) return;
  const [first] = errors;
  throw requestError(new GatewayError('BAD_USER_INPUT', first?.message ?? 'Invalid variables', errors.length > 1 ? { extensions: { errors: errors.map((error) => error.message) } } : {}));
}

/**
 * Refuses a document whose cost (lists counted by the items they stand for) is over `maxCost`: 15
 * aliases of every channel's 24-hour schedule never start. Variables are checked first
 * (graphql-query-complexity coerces them without a bound on errors), and the library's own refusals
 * (too many nodes once fragments are expanded) are the client's mistake too. Throws the request error.
 */
export function assertAffordable(schema: GraphQLSchema, document: DocumentNode, operation: OperationDefinitionNode | null | undefined, variables: Record<string, unknown>, maxCost: number): void {
  if (operation) assertVariablesCoerce(schema, operation, variables);
  let cost: number;
  try {
    const operationName = operation?.name?.value;
    cost = getComplexity({ schema, query: document, variables, ...(operationName ? { operationName } : {}), estimators: [listAwareEstimator] });
  } catch (error) {
    if (!(error instanceof GraphQLError)) throw error;
    throw requestError(new GatewayError('BAD_USER_INPUT', `This query is too large to run: ${error.message}`, { cause: error }));
  }
  if (cost > maxCost) {
    throw requestError(new GatewayError('BAD_USER_INPUT', `This query costs ${cost}, over the limit of ${maxCost}: ask for fewer items or fewer aliases`, { extensions: { cost, maxCost } }));
  }
}

/** The cost limit before Apollo executes a query or a mutation (assertAffordable). */
export function costLimitPlugin<TContext extends object>(maxCost: number): ApolloServerPlugin<TContext> {
  return {
    async requestDidStart() {
      return {
        async didResolveOperation({ request, document, schema, operation }) {
          assertAffordable(schema, document, operation, request.variables ?? {}, maxCost);
        },
      };
    },
  };
}

/** Mutations that create an account or check a password (a slow hash each): at most one per request. */
const ONE_PER_REQUEST = new Set(['login', 'register']);

/**
 * The root fields a selection set asks for, through inline fragments and fragment spreads (each fragment
 * once: a fragment that spreads itself is refused by validation anyway).
 */
function rootFields(selections: readonly SelectionNode[], context: ValidationContext, seen = new Set<string>()): FieldNode[] {
  return selections.flatMap((selection) => {
    if (selection.kind === Kind.FIELD) return [selection];
    if (selection.kind === Kind.INLINE_FRAGMENT) return rootFields(selection.selectionSet.selections, context, seen);
    const name = selection.name.value;
    const fragment = seen.has(name) ? undefined : context.getFragment(name);
    seen.add(name);
    return fragment ? rootFields(fragment.selectionSet.selections, context, seen) : [];
  });
}

/**
 * A validation rule: `register` or `login` asked more than once in one request (aliases, fragments) is
 * refused before execution, like graphql-armor's limits (GRAPHQL_VALIDATION_FAILED).
 */
export function onePasswordMutationRule(context: ValidationContext): ASTVisitor {
  return {
    OperationDefinition(operation: OperationDefinitionNode) {
      if (operation.operation !== 'mutation') return;
      const asked = rootFields(operation.selectionSet.selections, context).filter((field) => ONE_PER_REQUEST.has(field.name.value));
      if (asked.length > 1) context.reportError(new GraphQLError('At most one login or register per request', { nodes: asked }));
    },
  };
}

/**
 * A validation rule for plain HTTP requests (one answer each): a subscription is refused before
 * execution (400 GRAPHQL_VALIDATION_FAILED) and told where it is served.
 */
export function queriesAndMutationsOnlyRule(context: ValidationContext): ASTVisitor {
  return {
    OperationDefinition(operation: OperationDefinitionNode) {
      if (operation.operation === 'subscription') context.reportError(new GraphQLError(SUBSCRIPTIONS_ELSEWHERE, { nodes: [operation] }));
    },
  };
}

export const SUBSCRIPTIONS_ELSEWHERE = 'A subscription needs a stream: send it with Accept: text/event-stream (GraphQL over SSE) or over a graphql-ws WebSocket';

/**
 * A validation rule for streams (SSE, WebSocket): subscriptions only. Queries and mutations go as
 * plain requests, where the response cache, persisted queries and their limits are.
 */
export function subscriptionsOnlyRule(context: ValidationContext): ASTVisitor {
  return {
    OperationDefinition(operation: OperationDefinitionNode) {
      if (operation.operation !== 'subscription') context.reportError(new GraphQLError(`A ${operation.operation} is sent as a plain POST or GET to /graphql: streams carry subscriptions only`, { nodes: [operation] }));
    },
  };
}

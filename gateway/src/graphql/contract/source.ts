import { coerceInputValue, type GraphQLField, type GraphQLSchema } from 'graphql';
import { GatewayError } from '../../errors.js';
import { encodePathSegment, upstreamOperations } from '../../routing/operations.js';
import { UPSTREAMS } from '../../../../shared/upstreams.js';
import type { GatewayContext, SourceOperation, SourceOperations } from './context.js';

/** A Mesh source as the Mesh runtime keeps it: its generated schema, before any transform. */
export interface RawSource {
  readonly name: string;
  readonly schema: GraphQLSchema;
}

/** Every operation of schemas/ by operationId, found in the Mesh sources; a missing one fails the start. */
export function sourceOperations(rawSources: readonly RawSource[]): SourceOperations {
  const found = new Map<string, SourceOperation>();
  for (const operation of upstreamOperations().values()) {
    const source = rawSources.find(({ name }) => name === UPSTREAMS[operation.upstream].meshSource);
    const parentType = operation.method === 'GET' ? source?.schema.getQueryType() : source?.schema.getMutationType();
    const field = parentType?.getFields()[operation.operationId];
    if (!parentType || !field?.resolve) throw new Error(`Mesh generated no executable field for ${operation.operationId} (${UPSTREAMS[operation.upstream].meshSource})`);
    found.set(operation.operationId, { operationId: operation.operationId, field: field as GraphQLField<unknown, GatewayContext>, parentType, pathParams: operation.pathParams });
  }
  return found;
}

/**
 * Why a value was refused, in the words of graphql-js or of the scalar Mesh generated from the spec's
 * limits, without the generated type names (`queryInput_search_q`) or the value echoed back.
 */
function reasonOf(message: string, value: unknown): string {
  const reason = message
    .replace(/^Expected type "[^"]*"\.\s*/, '')
    .replace(/^Expected value of type "[^"]*", found .*$/s, 'not one of the accepted values')
    .replace(/^\w+ (?=cannot be |must be )/, '')
    .replace(/\s*but given .*$/s, '')
    .trim();
  // The generated length limits say "cannot be less than 8": of a text, that is its length.
  const length = typeof value === 'string' ? /^cannot be (less|more) than (\d+)$/.exec(reason) : null;
  if (length) return `must be at ${length[1] === 'less' ? 'least' : 'most'} ${length[2]} character${length[2] === '1' ? '' : 's'} long`;
  return reason === '' ? 'not accepted' : reason;
}

/**
 * The arguments as the source's field takes them: coerced by its generated types (the spec's limits:
 * minimum, maxLength, enums, …) with its defaults, so a value the spec refuses never becomes a call.
 * An error names the contract's argument (or the input's field), never a generated type.
 */
function coercedArguments(operation: SourceOperation, args: Readonly<Record<string, unknown>>, names: Readonly<Record<string, string>>): Record<string, unknown> {
  const coerced: Record<string, unknown> = {};
  for (const definition of operation.field.args) {
    const value = args[definition.name];
    if (value === undefined) {
      if (definition.defaultValue !== undefined) coerced[definition.name] = definition.defaultValue;
      continue;
    }
    coerced[definition.name] = coerceInputValue(value, definition.type, (path, invalid, error) => {
      // A body's fields are the contract's arguments (or the input object's fields).
      const inner = path.filter((key): key is string => typeof key === 'string').at(-1);
      const argument = definition.name === 'input' && inner !== undefined ? inner : (names[definition.name] ?? definition.name);
      throw new GatewayError('BAD_USER_INPUT', `Invalid value for argument "${argument}": ${reasonOf(error.message, invalid)}`, { cause: error });
    });
  }
  return coerced;
}

/**
 * Calls an upstream operation (by its operationId in schemas/) through the resolver Mesh generated for
 * it: one call, no second GraphQL execution. `names` maps an operation's arguments to the contract's,
 * for errors (a batch's `ids` are the clients' `id`). Arguments that go into the path are
 * percent-encoded as one segment each (Mesh puts values into paths as they are); the upstream client
 * then checks the target against the template. Mesh hands an upstream failure back as an Error value:
 * it is thrown here.
 */
export async function callSource<T>(context: GatewayContext, operationId: string, args: Readonly<Record<string, unknown>>, names: Readonly<Record<string, string>> = {}): Promise<T> {
  const operation = context.sources.get(operationId);
  if (!operation) throw new Error(`no Mesh operation for ${operationId}`);
  const sent = coercedArguments(operation, args, names);
  for (const name of operation.pathParams) {
    if (name in sent) sent[name] = encodePathSegment(String(sent[name]), name);
  }
  const info = { fieldName: operationId, parentType: operation.parentType };
  const result = await (operation.field.resolve as (root: unknown, args: unknown, context: GatewayContext, info: unknown) => unknown)(undefined, sent, context, info);
  if (result instanceof Error) throw result;
  return result as T;
}

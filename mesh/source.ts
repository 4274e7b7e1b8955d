import { GatewayError } from '../gateway/src/errors.js';
import { encodePathSegment, upstreamOperations } from '../gateway/src/upstream/operations.js';
import { UPSTREAMS } from '../gateway/src/upstreams.js';
import type { GatewayContext, MeshSdk } from './context.js';

const INVALID_VARIABLE = /^Variable "\$(\w+)" got invalid value/;

/**
 * The error at the bottom of Mesh's wrapping: the upstream client's catalogue error, or, when the
 * source's own argument types refused a value before any call, a BAD_USER_INPUT naming the argument
 * (never the generated type names). Anything else goes on up as it is, to be logged.
 */
function unwrap(error: Error): Error {
  const argument = INVALID_VARIABLE.exec(error.message)?.[1];
  if (argument) return new GatewayError('BAD_USER_INPUT', `Invalid value for argument "${argument}"`, { cause: error });
  let current = error;
  for (let next = (current as { originalError?: unknown }).originalError; next instanceof Error; next = (current as { originalError?: unknown }).originalError) {
    current = next;
  }
  return current;
}

/**
 * Calls an upstream operation (by its operationId in schemas/) through Mesh's in-context SDK, with its
 * own selection set. Arguments that go into the path are percent-encoded as one segment each (Mesh puts
 * values into paths as they are); the upstream client then checks the target against the template.
 * The SDK hands an upstream failure back as an Error value rather than rejecting: it is thrown here.
 */
export async function callSource<T>(context: GatewayContext, operationId: string, args: Record<string, unknown>, selectionSet: string): Promise<T> {
  const operation = upstreamOperations().get(operationId);
  const source = operation && UPSTREAMS[operation.upstream].meshSource;
  const call = source && (context as unknown as MeshSdk)[source]?.[operation.method === 'GET' ? 'Query' : 'Mutation']?.[`${source}_${operationId}`];
  if (!operation || !call) throw new Error(`no Mesh operation for ${operationId}`);
  const sent = { ...args };
  for (const name of operation.pathParams) {
    if (name in sent) sent[name] = encodePathSegment(String(sent[name]), name);
  }
  const result = await call({ args: sent, context, selectionSet });
  if (result instanceof Error) throw unwrap(result);
  return result as T;
}

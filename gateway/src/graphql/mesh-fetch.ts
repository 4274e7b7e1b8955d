import type { GatewayContext } from './contract/context.js';
import { errors as undiciErrors } from 'undici';
import { GatewayError, internalError } from '../errors.js';
import type { Caller, UpstreamCall } from '../upstream/call.js';
import type { UpstreamClient } from '../upstream/client.js';
import { InvalidResponseBodyError, upstreamFailure } from '../upstream/failures.js';
import type { UpstreamOperation } from '../routing/operations.js';
import type { UpstreamUrls } from '../../../shared/upstreams.js';

/** What Mesh's OpenAPI handler calls for every upstream request: fetch's shape, plus its context and field. */
export type MeshFetch = (url: string, init: RequestInit, context: GatewayContext, info: { readonly fieldName: string }) => Promise<Response>;

/** The only request headers of Mesh's own that an upstream needs; the gateway's are added by the client. */
const MESH_HEADERS = ['accept', 'content-type'];

/** The request's caller, its calls under the batch's span or, during execution, the execute span's. */
function tracedCaller(context: GatewayContext): Caller {
  const parent = context.traceParent ?? context.tracing?.execution;
  return parent ? { ...context.caller, traceParent: parent } : context.caller;
}

/**
 * Mesh's fetch, made of the upstream client. The operation is the source field Mesh resolves (its name
 * is the spec's operationId), so its path template is known and the client refuses a target outside
 * it; the host is never Mesh's to choose (the URL only ever names the operation's own upstream). The
 * answer is read whole, within UPSTREAM_RESPONSE_LIMIT_BYTES and the timeout, never a redirect, and
 * must be JSON: Mesh gets a Response it can only parse, or the catalogue's error.
 */
export function createMeshFetch(client: UpstreamClient, upstreams: UpstreamUrls, operations: ReadonlyMap<string, UpstreamOperation>, responseLimitBytes: number): MeshFetch {
  return async (url, init, context, info) => {
    const operation = operations.get(info.fieldName);
    const base = operation && upstreams[operation.upstream];
    if (!operation || !base || !url.startsWith(`${base}/`)) throw internalError(new Error(`Mesh called ${info.fieldName} at an unexpected URL`));
    // Nothing more starts for a client that went away.
    if (context.signal.aborted) throw upstreamFailure(new undiciErrors.RequestAbortedError('the client went away'), operation.upstream);
    if (context.budget.used >= context.budget.limit) {
      throw new GatewayError('BAD_USER_INPUT', `This query needs more than ${context.budget.limit} upstream calls: ask for less in one request`);
    }
    context.budget.used += 1;
    const target = url.slice(base.length);
    const queryStart = target.indexOf('?');
    const headers = new Headers(init.headers);
    const call: UpstreamCall = {
      method: init.method ?? 'GET',
      path: queryStart === -1 ? target : target.slice(0, queryStart),
      query: queryStart === -1 ? '' : target.slice(queryStart + 1),
      headers: Object.fromEntries(MESH_HEADERS.flatMap((name) => (headers.has(name) ? [[name, headers.get(name) as string]] : []))),
      body: typeof init.body === 'string' ? init.body : null,
      caller: tracedCaller(context),
      operation,
      redirects: 'refuse',
      responseLimitBytes,
      deadline: true,
      signal: context.signal,
    };
    const response = await client.request(operation.upstream, call);
    context.cachePolicy.note(operation.upstream, response.headers);
    if (response.statusCode >= 400) throw await client.errorOf(operation.upstream, call, response);
    const text = await client.text(operation.upstream, response);
    if (text !== '') {
      try {
        JSON.parse(text);
      } catch (error) {
        throw upstreamFailure(new InvalidResponseBodyError('the answer is not JSON', { cause: error }), operation.upstream, true);
      }
    }
    return new Response(response.statusCode === 204 ? null : text, { status: response.statusCode, headers: { 'content-type': 'application/json' } });
  };
}

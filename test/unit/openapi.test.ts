import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import { describe, expect, it } from 'vitest';
import { ERROR_KINDS, GatewayError, toProblem, type ErrorCode } from '../../gateway/src/errors.js';
import { gatewayOpenApi } from '../../gateway/src/rest/openapi.js';
import { upstreamHttpFailure } from '../../gateway/src/upstream/failures.js';
import { UPSTREAM_NAMES, UPSTREAMS } from '../../shared/upstreams.js';

type Operation = { tags: string[]; responses: Record<string, { $ref?: string }> };
type Document = { paths: Record<string, Record<string, Operation>> };

const document = gatewayOpenApi([]) as unknown as Document;
const ajv = new Ajv2020({ strict: false, validateSchema: false, allErrors: true });
addFormats.default(ajv);
ajv.addSchema(document, 'gateway');

/** JSON Pointer tokens (RFC 6901). */
const pointer = (...tokens: string[]) => tokens.map((token) => `/${token.replaceAll('~', '~0').replaceAll('/', '~1')}`).join('');

/** Every operation the gateway routes to a service, with its path and method. */
const routed = Object.entries(document.paths).flatMap(([path, item]) =>
  Object.entries(item)
    .filter(([method, operation]) => method !== 'parameters' && operation.tags[0] !== 'gateway')
    .map(([method, operation]) => ({ path, method, operation })),
);

/** The validation errors of `body` as the problem the document describes for `status` on an operation (or its `default`). */
function violations(path: string, method: string, status: number, body: unknown): unknown {
  const { responses } = document.paths[path]?.[method] as Operation;
  const key = String(status) in responses ? String(status) : 'default';
  const response = responses[key]?.$ref?.slice(1) ?? pointer('paths', path, method, 'responses', key);
  const validate = ajv.getSchema(`gateway#${response}${pointer('content', 'application/problem+json', 'schema')}`);
  if (!validate) throw new Error(`${method} ${path} ${status}: no problem documented`);
  return validate(body) ? [] : validate.errors;
}

describe('the OpenAPI document’s problems (gateway/src/rest/openapi.ts)', () => {
  it('describe every kind of the catalogue as toProblem renders it, on every routed operation', () => {
    for (const { path, method } of routed) {
      for (const code of Object.keys(ERROR_KINDS) as ErrorCode[]) {
        const error = new GatewayError(code, 'Something went wrong');
        expect(violations(path, method, error.status, toProblem(error, path, { requestId: 'r1', traceId: 't1' })), `${method} ${path} ${code}`).toEqual([]);
      }
    }
  });

  it('describe every error a service documents as the problem the gateway relays in its place (failures.ts)', () => {
    const upstreamOf = new Map(UPSTREAM_NAMES.map((name) => [UPSTREAMS[name].title, name]));
    const relayed = (upstream: (typeof UPSTREAM_NAMES)[number], status: number, detail: unknown) => toProblem(upstreamHttpFailure(upstream, status, JSON.stringify({ detail }), {}).error, '/x', { requestId: 'r1' });
    const list = [{ loc: ['body', 'title'], msg: 'Field required', type: 'missing' }];
    let checked = 0;
    for (const { path, method, operation } of routed) {
      const upstream = upstreamOf.get(operation.tags[0] ?? '');
      if (!upstream) throw new Error(`${method} ${path}: no service`);
      for (const status of Object.keys(operation.responses).map(Number).filter((status) => status >= 400)) {
        // The services answer 422 with a FastAPI validation list, every other error with a sentence.
        expect(violations(path, method, status, relayed(upstream, status, status === 422 ? list : 'Something went wrong')), `${method} ${path} ${status}`).toEqual([]);
        if (status === 422) expect(violations(path, method, status, relayed(upstream, status, 'a sentence')), `${method} ${path} 422 without errors[]`).not.toEqual([]);
        checked++;
      }
    }
    expect(checked).toBeGreaterThan(100);
  });

  it('say what a problem of each status carries: its status, and the codes the catalogue gives it', () => {
    const problem = toProblem(new GatewayError('NOT_FOUND', 'No such movie'), '/ondemand/movies/x', { requestId: 'r1' });
    expect(violations('/ondemand/movies/{id}', 'get', 404, problem)).toEqual([]);
    expect(violations('/ondemand/movies/{id}', 'get', 404, { ...problem, status: 410 })).not.toEqual([]);
    expect(violations('/ondemand/movies/{id}', 'get', 404, { ...problem, code: 'FORBIDDEN' })).not.toEqual([]);
    expect(violations('/ondemand/movies/{id}', 'get', 404, { ...problem, detail: ['a list'] })).not.toEqual([]);
  });
});

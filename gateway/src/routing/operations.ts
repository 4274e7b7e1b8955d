import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import { GatewayError } from '../errors.js';
import { specPath, UPSTREAM_NAMES, type UpstreamName } from '../../../shared/upstreams.js';

/** One operation of an upstream's OpenAPI spec: where its calls may go. */
export interface UpstreamOperation {
  readonly operationId: string;
  readonly upstream: UpstreamName;
  readonly method: string;
  /** The spec's path template, such as `/play/ondemand/{movieId}`. */
  readonly template: string;
  readonly pathParams: readonly string[];
  readonly queryParams: ReadonlySet<string>;
}

interface SpecParameter {
  readonly name?: string;
  readonly in?: string;
  readonly $ref?: string;
}

interface SpecOperation {
  readonly operationId?: string;
  readonly parameters?: readonly SpecParameter[];
}

type SpecPathItem = Record<string, SpecOperation | readonly SpecParameter[] | undefined> & { readonly parameters?: readonly SpecParameter[] };

const METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'];

/** Every operation of the six specs in schemas/, by operationId (unique across them: Mesh merges them). */
export function loadOperations(): ReadonlyMap<string, UpstreamOperation> {
  const operations = new Map<string, UpstreamOperation>();
  for (const upstream of UPSTREAM_NAMES) {
    const spec = parse(readFileSync(specPath(upstream), 'utf8')) as { paths?: Record<string, SpecPathItem>; components?: { parameters?: Record<string, SpecParameter> } };
    // Parameters are often shared: `$ref: '#/components/parameters/Name'`.
    const resolve = (parameter: SpecParameter) => (parameter.$ref ? (spec.components?.parameters?.[parameter.$ref.replace('#/components/parameters/', '')] ?? {}) : parameter);
    for (const [template, item] of Object.entries(spec.paths ?? {})) {
      for (const method of METHODS) {
        const operation = item[method] as SpecOperation | undefined;
        if (!operation?.operationId) continue;
        const parameters = [...(item.parameters ?? []), ...(operation.parameters ?? [])].map(resolve);
        const named = (place: string) => parameters.filter((parameter) => parameter.in === place && parameter.name).map((parameter) => parameter.name as string);
        if (operations.has(operation.operationId)) throw new Error(`operationId ${operation.operationId} appears twice in schemas/`);
        operations.set(operation.operationId, {
          operationId: operation.operationId,
          upstream,
          method: method.toUpperCase(),
          template,
          pathParams: named('path'),
          queryParams: new Set(named('query')),
        });
      }
    }
  }
  return operations;
}

/**
 * Characters no path argument may hold, whatever the encoding: they split or re-join segments once
 * some server decodes them ("/", "\", "%", ";" and NUL). The REST face refuses the same in its paths.
 */
const STRUCTURAL = /[/\\%;\0]/;

/**
 * A value placed in a path, percent-encoded as exactly one segment. Values that could not stay one
 * segment everywhere (dot segments, empty, or holding a structural character) are refused.
 */
export function encodePathSegment(value: string, argument: string): string {
  if (value === '' || value === '.' || value === '..' || STRUCTURAL.test(value)) {
    throw new GatewayError('BAD_USER_INPUT', `Invalid value for argument "${argument}": must not be empty, "." or "..", nor hold / \\ % ; or NUL`);
  }
  // A lone surrogate has no UTF-8 form (encodeURIComponent throws): the client's text, not our fault.
  if (!value.isWellFormed()) throw new GatewayError('BAD_USER_INPUT', `Invalid value for argument "${argument}": not well-formed Unicode text`);
  return encodeURIComponent(value);
}

const isParameter = (segment: string) => segment.startsWith('{') && segment.endsWith('}');

/** A segment as encodePathSegment makes them: pchar only, escapes well-formed, none of a structural character. */
const SEGMENT = /^(?:[A-Za-z0-9\-._~!$&'()*+,=:@]|%[0-9A-Fa-f]{2})+$/;
const STRUCTURAL_ESCAPE = /%(?:2f|5c|25|3b|00)/i;

function fitsSegment(segment: string): boolean {
  return segment !== '.' && segment !== '..' && SEGMENT.test(segment) && !STRUCTURAL_ESCAPE.test(segment);
}

/**
 * Whether a target stays within an operation: the path has the template's segments, each parameter
 * exactly one plain segment, and the query names only the operation's query parameters.
 */
export function fitsOperation(operation: UpstreamOperation, path: string, query = ''): boolean {
  const expected = operation.template.split('/');
  const actual = path.split('/');
  if (actual.length !== expected.length) return false;
  for (let i = 0; i < expected.length; i++) {
    const literal = expected[i] as string;
    const segment = actual[i] as string;
    if (isParameter(literal) ? !fitsSegment(segment) : segment !== literal) return false;
  }
  if (query === '') return true;
  return query.split('&').every((pair) => {
    const name = pair.split('=', 1)[0] ?? '';
    try {
      return operation.queryParams.has(decodeURIComponent(name));
    } catch {
      return false;
    }
  });
}

/**
 * The path parameters of a call's path, by the operation's template (decoded), as a router reads them;
 * undefined when the path does not have the template's segments, or a parameter does not decode.
 */
export function pathParamsOf(operation: UpstreamOperation, path: string): Record<string, string> | undefined {
  const expected = operation.template.split('/');
  const actual = (path.replace(/\/+$/, '') || '/').split('/');
  if (actual.length !== expected.length) return undefined;
  const params: Record<string, string> = {};
  for (const [index, literal] of expected.entries()) {
    if (!isParameter(literal)) continue;
    try {
      params[literal.slice(1, -1)] = decodeURIComponent(actual[index] ?? '');
    } catch {
      return undefined;
    }
  }
  return params;
}

let loaded: ReadonlyMap<string, UpstreamOperation> | undefined;

/** The operations of schemas/, read once per process. */
export function upstreamOperations(): ReadonlyMap<string, UpstreamOperation> {
  loaded ??= loadOperations();
  return loaded;
}

/** How much of a template is literal text: a router prefers the template that says most. */
const literalLength = (template: string) => template.replace(/\{[^}]*\}/g, '').length;

let candidates: ReadonlyMap<string, readonly UpstreamOperation[]> | undefined;

/** Each upstream's operations of each method, the literal paths first, then by their literal text, longest first. */
function candidatesFor(upstream: UpstreamName, method: string): readonly UpstreamOperation[] {
  if (!candidates) {
    const grouped = new Map<string, UpstreamOperation[]>();
    for (const operation of upstreamOperations().values()) {
      const key = `${operation.upstream} ${operation.method}`;
      grouped.set(key, [...(grouped.get(key) ?? []), operation]);
    }
    const templated = (operation: UpstreamOperation) => (operation.template.includes('{') ? 1 : 0);
    for (const list of grouped.values()) list.sort((a, b) => templated(a) - templated(b) || literalLength(b.template) - literalLength(a.template));
    candidates = grouped;
  }
  return candidates.get(`${upstream} ${method}`) ?? [];
}

function reaches(template: readonly string[], path: readonly string[]): boolean {
  return template.length === path.length && template.every((literal, index) => (isParameter(literal) ? (path[index] ?? '') !== '' : literal.toLowerCase() === path[index]?.toLowerCase()));
}

/**
 * The operation of `upstream`'s spec that a (normalised) request path reaches, matched as the
 * upstream's router does, or more loosely: trailing slashes ignored (the reference services'
 * openapi-backend drops them), literal segments compared without case (some frameworks route so), a
 * parameter any one non-empty segment, a literal path before a templated one, then the template with
 * the most literal text. Looser is the safe side: a guard keyed on an operation may count a call its
 * upstream then answers 404, never miss one it serves. Undefined when none matches: the upstream
 * answers 404 or 405 itself.
 */
export function operationReached(upstream: UpstreamName, method: string, path: string): UpstreamOperation | undefined {
  const segments = (path.replace(/\/+$/, '') || '/').split('/');
  return candidatesFor(upstream, method).find((operation) => reaches(operation.template.split('/'), segments));
}

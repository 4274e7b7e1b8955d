import type { GraphQLInputBounds } from '../config.js';
import { GatewayError } from '../errors.js';


const OPEN_BRACKET = 0x5b;
const OPEN_BRACE = 0x7b;
const CLOSE_BRACKET = 0x5d;
const CLOSE_BRACE = 0x7d;
const QUOTE = 0x22;
const BACKSLASH = 0x5c;

/**
 * Whether JSON text nests arrays and objects at most `maxDepth` deep, read in one pass without parsing.
 * `JSON.parse` has no depth option and builds every level before anything can look at it (4 MB of `[`
 * held the event loop for over a second); no maintained parser bounds depth without being far slower,
 * so this scan runs first. Text that is not JSON passes: the parser then refuses it.
 */
export function nestsWithin(text: string, maxDepth: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (inString) {
      if (code === BACKSLASH) i++;
      else if (code === QUOTE) inString = false;
    } else if (code === QUOTE) inString = true;
    else if (code === OPEN_BRACKET || code === OPEN_BRACE) {
      if (++depth > maxDepth) return false;
    } else if ((code === CLOSE_BRACKET || code === CLOSE_BRACE) && depth > 0) depth--;
  }
  return true;
}

/**
 * Whether the values inside `roots` (scalars, list items and object fields, nested ones included; the
 * roots themselves not counted) number at most `limit`: the walk stops as soon as they do not.
 */
export function valuesWithin(roots: readonly unknown[], limit: number): boolean {
  const children = (value: unknown): unknown[] => (value !== null && typeof value === 'object' ? (Array.isArray(value) ? value : Object.values(value)) : []);
  const pending = roots.flatMap(children);
  let seen = pending.length;
  while (seen <= limit && pending.length > 0) {
    const inner = children(pending.pop());
    seen += inner.length;
    if (seen <= limit) for (const value of inner) pending.push(value);
  }
  return seen <= limit;
}

function tooDeep(bounds: GraphQLInputBounds): GatewayError {
  return new GatewayError('BAD_USER_INPUT', `The request nests JSON deeper than ${bounds.maxJsonDepth} levels`);
}

/** The parts of a GraphQL request that carry client data for the libraries to walk. */
function assertValues(variables: unknown, extensions: unknown, bounds: GraphQLInputBounds): void {
  if (!valuesWithin([variables, extensions], bounds.maxValues)) {
    throw new GatewayError('BAD_USER_INPUT', `The request's variables and extensions hold more than ${bounds.maxValues} values`);
  }
}

/** A POST body as JSON, within the bounds; refusals are 400 BAD_USER_INPUT. */
export function parseBoundedJson(text: string, bounds: GraphQLInputBounds): unknown {
  if (!nestsWithin(text, bounds.maxJsonDepth)) throw tooDeep(bounds);
  let body: unknown;
  try {
    body = JSON.parse(text) as unknown;
  } catch (error) {
    throw new GatewayError('BAD_USER_INPUT', 'The request body is not valid JSON', { cause: error });
  }
  if (body !== null && typeof body === 'object' && !Array.isArray(body)) {
    const { variables, extensions } = body as Record<string, unknown>;
    assertValues(variables, extensions, bounds);
  }
  return body;
}

/**
 * A GET's `variables` and `extensions` (JSON in the query string, which Apollo parses) within the same
 * bounds; what does not parse is left for Apollo to refuse in its own words.
 */
export function assertBoundedSearch(search: string, bounds: GraphQLInputBounds): void {
  const params = new URLSearchParams(search);
  const parsed = ['variables', 'extensions'].map((name) => {
    const text = params.get(name);
    if (text === null) return undefined;
    if (!nestsWithin(text, bounds.maxJsonDepth)) throw tooDeep(bounds);
    try {
      return JSON.parse(text) as unknown;
    } catch {
      return undefined;
    }
  });
  assertValues(parsed[0], parsed[1], bounds);
}

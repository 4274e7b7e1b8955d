import { GatewayError } from '../errors.js';

export interface RequestTarget {
  /** The normalised path: what the gateway routes on and, unchanged, what it forwards. */
  readonly path: string;
  /** The raw query string without "?", forwarded byte for byte ("" when absent). */
  readonly query: string;
}

/** pchar of RFC 3986 plus "/", less ";" (no path parameters) and with "%" only as an escape. */
const ALLOWED_PATH = /^[A-Za-z0-9\-._~!$&'()*+,=:@/%]*$/;
const UNRESERVED = /[A-Za-z0-9\-._~]/;

function refuse(detail: string): GatewayError {
  return new GatewayError('BAD_USER_INPUT', detail);
}

/**
 * Percent-escapes are validated and upper-cased; escapes of unreserved characters are decoded (RFC 3986
 * 6.2.2), so `%2e%2e` is seen as the dot segment it is. Escapes that could change the path's
 * structure after any later decoding are refused: "/" and "\" (split segments), "%" (double
 * encoding) and NUL.
 */
function normaliseEscapes(path: string): string {
  let out = '';
  for (let i = 0; i < path.length; i++) {
    const char = path[i] as string;
    if (char !== '%') {
      out += char;
      continue;
    }
    const hex = path.slice(i + 1, i + 3);
    if (!/^[0-9A-Fa-f]{2}$/.test(hex)) throw refuse('The path contains an invalid percent-escape');
    const code = parseInt(hex, 16);
    if (code === 0x2f || code === 0x5c) throw refuse('The path contains an encoded slash or backslash');
    if (code === 0x25) throw refuse('The path contains an encoded percent sign');
    if (code === 0x00) throw refuse('The path contains a NUL byte');
    if (code === 0x3b) throw refuse('The path contains an encoded ";"');
    const decoded = String.fromCharCode(code);
    out += code < 0x80 && UNRESERVED.test(decoded) ? decoded : `%${hex.toUpperCase()}`;
    i += 2;
  }
  return out;
}

/** RFC 3986 remove_dot_segments, after merging runs of "/" (an empty segment routes nowhere useful). */
function removeDotSegments(path: string): string {
  const output: string[] = [];
  const segments = path.split('/').slice(1);
  segments.forEach((segment, index) => {
    const last = index === segments.length - 1;
    if (segment === '.' || segment === '..') {
      if (segment === '..') output.pop();
      if (last) output.push('');
      return;
    }
    if (segment === '' && !last) return;
    output.push(segment);
  });
  return `/${output.join('/')}`;
}

/**
 * Splits a request target into the path the gateway will route on and forward, and the raw query.
 * Anything that cannot be normalised safely is a 400, so the path decided on is the path sent.
 */
export function normaliseTarget(target: string): RequestTarget {
  if (!target.startsWith('/')) throw refuse('Only origin-form request targets ("/path?query") are accepted');
  const queryStart = target.indexOf('?');
  const rawPath = queryStart === -1 ? target : target.slice(0, queryStart);
  const query = queryStart === -1 ? '' : target.slice(queryStart + 1);
  if (rawPath.includes('\\')) throw refuse('The path contains a backslash');
  if (rawPath.includes(';')) throw refuse('Path parameters (";") are not accepted');
  if (rawPath.includes('\0')) throw refuse('The path contains a NUL byte');
  if (!ALLOWED_PATH.test(rawPath)) throw refuse('The path contains characters that are not allowed');
  const path = removeDotSegments(normaliseEscapes(rawPath));
  // Escapes that decode to no UTF-8 text (`%FF`) name nothing an upstream can route: a service that
  // decodes them fails, and its 5xx would count against its circuit.
  try {
    decodeURIComponent(path);
  } catch {
    throw refuse('The path contains percent-escapes that are not UTF-8');
  }
  return { path, query };
}

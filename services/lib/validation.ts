import type { ErrorObject } from 'ajv';
import type { ValidationIssue } from './errors.js';

const LOCATION_NAMES: Record<string, string> = {
  path: 'path',
  query: 'query',
  header: 'header',
  cookie: 'cookie',
  requestBody: 'body',
};

function locationOf(error: ErrorObject): (string | number)[] {
  const segments = error.instancePath
    .split('/')
    .slice(1)
    .map((segment) => segment.replace(/~1/g, '/').replace(/~0/g, '~'));
  const [first, ...rest] = segments;
  const loc: (string | number)[] = [first === undefined ? 'body' : (LOCATION_NAMES[first] ?? first)];
  for (const segment of rest) loc.push(/^\d+$/.test(segment) ? Number(segment) : segment);
  const missing = (error.params as { missingProperty?: unknown }).missingProperty;
  if (error.keyword === 'required' && typeof missing === 'string') loc.push(missing);
  const extra = (error.params as { additionalProperty?: unknown }).additionalProperty;
  if (error.keyword === 'additionalProperties' && typeof extra === 'string') loc.push(extra);
  return loc;
}

const TYPE_NAMES: Record<string, string> = {
  required: 'missing',
  additionalProperties: 'extra_forbidden',
  parse: 'json_invalid',
};

/** Ajv's errors in the shape FastAPI answers with: `{loc, msg, type}`. */
export function toValidationIssues(errors: readonly ErrorObject[]): ValidationIssue[] {
  return errors.map((error) => {
    if (error.keyword === 'required' && error.instancePath === '' && error.params.missingProperty === 'requestBody') {
      return { loc: ['body'], msg: 'Field required', type: 'missing' };
    }
    return {
      loc: locationOf(error),
      msg: error.keyword === 'required' ? 'Field required' : (error.message ?? 'Invalid value'),
      type: TYPE_NAMES[error.keyword] ?? error.keyword,
    };
  });
}

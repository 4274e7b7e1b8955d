/**
 * How the gateway describes what it answers in its OpenAPI document: the vocabulary the REST document
 * (`rest/openapi.ts`) is written in, and that each endpoint the gateway serves itself (probes, metrics,
 * docs, /graphql) uses to describe itself.
 */
export type Json = Record<string, unknown>;

/** A path the gateway answers itself, described: its OpenAPI path item, and the schemas it names. */
export interface DescribedPath {
  readonly path: string;
  readonly openapi: Readonly<Json>;
  readonly schemas?: Readonly<Record<string, Json>>;
}

export const COMPONENT_KINDS = ['schemas', 'parameters', 'responses', 'requestBodies', 'headers', 'examples'] as const;

const PROBLEM_TYPE = 'application/problem+json';

/** The name of the problem schema of one status (`GatewayProblem404`), or of any status. */
export const problemSchemaName = (status?: number) => `GatewayProblem${status ?? ''}`;

/** A `$ref` to a component of the document. */
export const ref = (kind: (typeof COMPONENT_KINDS)[number], name: string) => ({ $ref: `#/components/${kind}/${name}` });

/** Headers a problem of a status carries: every 401 is a challenge (RFC 6750); a 429 says when to come back. */
const PROBLEM_HEADERS: Readonly<Record<number, Json>> = {
  401: { 'WWW-Authenticate': { required: true, description: '`Bearer`, with `error="invalid_token"` when a token was sent and refused', schema: { type: 'string', pattern: '^Bearer' } } },
  429: { 'Retry-After': { description: 'Seconds until a request may pass (from the gateway; from a service, when it sends one)', schema: { type: 'string', pattern: '^\\d+$' } } },
};

/** The content of the gateway's problem+json for `status` (any error status when omitted), with more members when given. */
export function problemContent(status?: number, members?: Json): Json {
  const schema = ref('schemas', problemSchemaName(status));
  return { [PROBLEM_TYPE]: { schema: members ? { allOf: [schema, members] } : schema } };
}

/** A response of the gateway's problem+json (problemContent), with the headers of its status. */
export function problemResponse(description: string, status?: number, members?: Json): Json {
  const headers = status === undefined ? undefined : PROBLEM_HEADERS[status];
  return { description, ...(headers ? { headers } : {}), content: problemContent(status, members) };
}

export const ANY_ERROR = 'GatewayError';

/** The `default` response of every operation: whatever else goes wrong is a problem too. */
export const ANY_ERROR_RESPONSE = ref('responses', ANY_ERROR);

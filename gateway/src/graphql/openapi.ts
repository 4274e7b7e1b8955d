import { GRAPHQL_MEDIA_TYPES } from '../errors.js';
import { problemContent, type DescribedPath } from '../openapi.js';
import { GRAPHQL_PATH } from '../routing/router.js';

const schema = (name: string) => ({ $ref: `#/components/schemas/${name}` });

/** A GraphQL answer in each media type the client may prefer (errors.ts: `graphqlMediaType`). */
const graphqlContent = (name: string) => Object.fromEntries(GRAPHQL_MEDIA_TYPES.map((type) => [type.split(';')[0] ?? type, { schema: schema(name) }]));

/** GraphQL errors for the whole request (no data), in the client's media type; before the GraphQL face, a problem. */
function requestErrors(description: string, orProblem = false): Record<string, unknown> {
  return { description, content: { ...graphqlContent('GraphQLRequestErrors'), ...(orProblem ? problemContent() : {}) } };
}

const SCHEMAS = {
  GraphQLRequest: {
    type: 'object',
    description: 'A GraphQL request: a document (`query`), or a registered one (`documentId`, trusted documents)',
    properties: {
      query: { type: 'string' },
      operationName: { type: ['string', 'null'] },
      variables: { type: ['object', 'null'] },
      extensions: { type: ['object', 'null'] },
      documentId: { type: 'string' },
    },
  },
  GraphQLError: {
    type: 'object',
    required: ['message', 'extensions'],
    properties: {
      message: { type: 'string' },
      locations: { type: 'array', items: { type: 'object', required: ['line', 'column'], properties: { line: { type: 'integer' }, column: { type: 'integer' } } } },
      path: { type: 'array', items: { type: ['string', 'integer'] } },
      extensions: { type: 'object', required: ['code'], properties: { code: { type: 'string' }, requestId: { type: 'string' }, traceId: { type: 'string' } } },
    },
  },
  GraphQLResponse: {
    type: 'object',
    description: 'A GraphQL result: `data` (a failing field null with its error), `errors` when any',
    additionalProperties: false,
    properties: { data: { type: ['object', 'null'] }, errors: { type: 'array', items: schema('GraphQLError') }, extensions: { type: 'object' } },
  },
  GraphQLRequestErrors: {
    type: 'object',
    description: 'A request that did not run: its errors, no data',
    additionalProperties: false,
    required: ['errors'],
    properties: { errors: { type: 'array', minItems: 1, items: schema('GraphQLError') }, extensions: { type: 'object' } },
  },
};

function operation(method: 'get' | 'post', explorer: boolean): Record<string, unknown> {
  const parameters = ['query', 'operationName', 'variables', 'extensions', 'documentId'].map((name) => ({ name, in: 'query', required: false, schema: { type: 'string' } }));
  return {
    summary: method === 'get' ? 'A GraphQL query by GET (a CDN may keep a public answer)' : 'A GraphQL operation',
    tags: ['gateway'],
    security: [{}, { bearerAuth: [] }],
    ...(method === 'get'
      ? { parameters: [...parameters, { name: 'apollo-require-preflight', in: 'header', required: false, description: 'CSRF prevention: a GET query needs it (or X-Apollo-Operation-Name)', schema: { type: 'string' } }] }
      : { requestBody: { required: true, content: { 'application/json': { schema: schema('GraphQLRequest') } } } }),
    responses: {
      '200': {
        description: explorer && method === 'get' ? 'The result; or, to a browser asking for HTML with no query, the explorer' : 'The result',
        content: { ...graphqlContent('GraphQLResponse'), ...(explorer && method === 'get' ? { 'text/html': { schema: { type: 'string' } } } : {}) },
      },
      '400': requestErrors('Not a request the gateway runs: a body that is not JSON, a document that does not parse or validate, an abuse limit, a GET without a preflight header, a persisted document required or unknown; a problem when refused before GraphQL (two Host headers)', true),
      '401': requestErrors('A token was sent and refused'),
      '413': requestErrors('The body is over the limit'),
      '429': requestErrors('Too many requests from this caller: see Retry-After'),
      default: requestErrors('Any other refusal of the whole request; a problem when refused before GraphQL (a target over 8 KiB)', true),
    },
  };
}

/** /graphql described (OpenAPI), as served: with the explorer page in development. */
export function graphqlDescription(explorer: boolean): DescribedPath {
  return { path: GRAPHQL_PATH, openapi: { get: operation('get', explorer), post: operation('post', explorer) }, schemas: SCHEMAS };
}

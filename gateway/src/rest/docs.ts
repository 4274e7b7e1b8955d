import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import { ownGet, sendJson, type OwnEndpoint } from '../own-endpoints.js';
import type { DescribedPath } from '../openapi.js';
import { gatewayOpenApi } from './openapi.js';

/** swagger-ui-dist's files this page uses, served by the gateway itself: the docs work offline. */
const ASSETS = { 'swagger-ui.css': 'text/css; charset=utf-8', 'swagger-ui-bundle.js': 'text/javascript; charset=utf-8' } as const;

const PAGE = `<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8" />
    <title>TV gateway · REST API</title>
    <link rel="stylesheet" href="/docs/swagger-ui.css" />
  </head>
  <body>
    <div id="swagger-ui"></div>
    <script src="/docs/swagger-ui-bundle.js"></script>
    <script>
      window.ui = SwaggerUIBundle({ url: '/openapi.json', dom_id: '#swagger-ui', deepLinking: true, persistAuthorization: false });
    </script>
  </body>
</html>
`;

/** Computed on first use, then kept: the document and the assets never change while the process runs. */
function once<T>(make: () => T): () => T {
  let value: { readonly made: T } | undefined;
  return () => (value ??= { made: make() }).made;
}

const INDEX_LINKS = { graphql: '/graphql', openapi: '/openapi.json', docs: '/docs', health: '/health', ready: '/ready' };

/**
 * The gateway's description and the way in for a developer: `GET /` (an index of links),
 * `/openapi.json` (openapi.ts: the REST face, then `described` — the other paths the gateway answers
 * itself — and these), `/docs` (Swagger UI over it, its assets from the gateway).
 */
export function docsEndpoints(described: readonly DescribedPath[]): OwnEndpoint[] {
  const assetDir = once(() => dirname(createRequire(import.meta.url).resolve('swagger-ui-dist/package.json')));
  const assets = Object.entries(ASSETS).map(([file, type]): OwnEndpoint => {
    const content = once(() => readFileSync(`${assetDir()}/${file}`));
    return {
      path: `/docs/${file}`,
      openapi: ownGet(`Swagger UI’s ${file}, for /docs`, { '200': { description: file, content: { [type.split(';')[0] ?? type]: { schema: { type: 'string' } } } } }),
      handle: ({ res }) => {
        const body = content();
        res.writeHead(200, { 'content-type': type, 'content-length': body.length, 'cache-control': 'public, max-age=86400' }).end(body);
      },
    };
  });
  const json = (schema: unknown) => ({ 'application/json': { schema } });
  const own: OwnEndpoint[] = [
    {
      path: '/',
      openapi: ownGet('An index of links', {
        '200': {
          description: 'The gateway’s name and where to go next',
          content: json({
            type: 'object',
            additionalProperties: false,
            required: ['name', 'links'],
            properties: { name: { type: 'string' }, links: { type: 'object', additionalProperties: false, required: Object.keys(INDEX_LINKS), properties: Object.fromEntries(Object.entries(INDEX_LINKS).map(([name, path]) => [name, { const: path }])) } },
          }),
        },
      }),
      handle: ({ res }) => sendJson(res, 200, { name: 'TV streaming gateway', links: INDEX_LINKS }),
    },
    {
      path: '/openapi.json',
      openapi: ownGet('This document', { '200': { description: 'The gateway described, OpenAPI 3.1', content: json({ type: 'object', required: ['openapi', 'info', 'paths'] }) } }),
      handle: ({ res }) => {
        const body = document();
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), 'cache-control': 'no-cache' }).end(body);
      },
    },
    {
      path: '/docs',
      openapi: ownGet('Swagger UI over this document, every asset from the gateway', { '200': { description: 'The page', content: { 'text/html': { schema: { type: 'string' } } } } }),
      handle: ({ res }) => void res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-cache' }).end(PAGE),
    },
    ...assets,
  ];
  const document = once(() => JSON.stringify(gatewayOpenApi([...described, ...own])));
  return own;
}

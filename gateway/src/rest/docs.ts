import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import { sendJson, type OwnEndpoint } from '../own-endpoints.js';
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

/**
 * The REST face's description and the way in for a developer: `GET /` (an index of links),
 * `/openapi.json` (openapi.ts), `/docs` (Swagger UI over it, its assets from the gateway).
 */
export function docsEndpoints(): OwnEndpoint[] {
  const document = once(() => JSON.stringify(gatewayOpenApi()));
  const assetDir = once(() => dirname(createRequire(import.meta.url).resolve('swagger-ui-dist/package.json')));
  const assets = Object.entries(ASSETS).map(([file, type]): OwnEndpoint => {
    const content = once(() => readFileSync(`${assetDir()}/${file}`));
    return {
      path: `/docs/${file}`,
      handle: ({ res }) => {
        const body = content();
        res.writeHead(200, { 'content-type': type, 'content-length': body.length, 'cache-control': 'public, max-age=86400' }).end(body);
      },
    };
  });
  return [
    {
      path: '/',
      handle: ({ res }) =>
        sendJson(res, 200, {
          name: 'TV streaming gateway',
          links: { graphql: '/graphql', openapi: '/openapi.json', docs: '/docs', health: '/health', ready: '/ready' },
        }),
    },
    {
      path: '/openapi.json',
      handle: ({ res }) => {
        const body = document();
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), 'cache-control': 'no-cache' }).end(body);
      },
    },
    { path: '/docs', handle: ({ res }) => void res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-cache' }).end(PAGE) },
    ...assets,
  ];
}

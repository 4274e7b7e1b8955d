import { Validator } from '@seriousme/openapi-schema-validator';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { findRoute, takesMethod } from '../../gateway/src/routing/routes.js';
import { specPath, UPSTREAM_NAMES } from '../../shared/upstreams.js';
import { startGateway } from '../helpers/gateway.js';
import { freePortBlock } from '../helpers/ports.js';
import { useStack } from '../helpers/stack.js';

interface Operation {
  security?: Record<string, string[]>[];
  responses: Record<string, { $ref?: string }>;
  'x-admin'?: boolean;
  tags?: string[];
}
type Document = { openapi: string; servers: { url: string }[]; paths: Record<string, Record<string, Operation>>; components: { securitySchemes: Record<string, unknown> } };

describe('the REST face described: GET /, /openapi.json, /docs', () => {
  const fx = useStack({ env: { NODE_ENV: 'production' } });
  const document = async () => (await (await fetch(`${fx.gateway.url}/openapi.json`)).json()) as Document;

  it('answers GET / with an index whose links all answer, and calls no service', async () => {
    const index = (await (await fetch(`${fx.gateway.url}/`)).json()) as { links: Record<string, string> };
    expect(index.links).toEqual({ graphql: '/graphql', openapi: '/openapi.json', docs: '/docs', health: '/health', ready: '/ready' });
    for (const link of ['/openapi.json', '/docs', '/health', '/docs/swagger-ui.css', '/docs/swagger-ui-bundle.js']) expect((await fetch(`${fx.gateway.url}${link}`)).status, link).toBe(200);
    expect(fx.upstreams.all()).toEqual([]);
  });

  it('serves a valid OpenAPI 3.1 document with the gateway as its only server', async () => {
    const served = await document();
    const result = await new Validator().validate(served as never);
    expect(result.errors ?? []).toEqual([]);
    expect(served.openapi).toBe('3.1.0');
    expect(served.servers).toEqual([{ url: '/', description: 'this gateway' }]);
    expect(served.components.securitySchemes).toEqual({ bearerAuth: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' } });
  });

  it('lists exactly the services’ operations the gateway routes, each with the access it enforces', async () => {
    const served = await document();
    const expected: string[] = [];
    for (const upstream of UPSTREAM_NAMES) {
      const spec = parse(readFileSync(specPath(upstream), 'utf8')) as { paths: Record<string, Record<string, unknown>> };
      for (const [path, item] of Object.entries(spec.paths)) {
        const rule = findRoute(path.replace(/\{[^}]+\}/g, 'x'));
        for (const method of ['get', 'put', 'post', 'delete', 'patch']) if (item[method] && rule && takesMethod(rule, method.toUpperCase())) expected.push(`${method} ${path}`);
      }
    }
    const listed = Object.entries(served.paths).flatMap(([path, item]) =>
      Object.entries(item)
        .filter(([key, operation]) => key !== 'parameters' && operation.tags?.[0] !== 'gateway')
        .map(([method]) => `${method} ${path}`),
    );
    expect(listed.sort()).toEqual(expected.sort());
    expect(listed.some((entry) => /\/internal\/|\/health$|jwks/.test(entry))).toBe(false);

    const operation = (method: string, path: string) => served.paths[path]?.[method] as Operation;
    expect(operation('post', '/auth/login').security).toEqual([]);
    expect(operation('get', '/search/global').security).toEqual([{}, { bearerAuth: [] }]);
    expect(operation('get', '/users/me').security).toEqual([{ bearerAuth: [] }]);
    expect(operation('get', '/users/me').responses['401']).toEqual({ $ref: '#/components/responses/Gateway401' });
    for (const [path, item] of Object.entries(served.paths)) {
      for (const [method, op] of Object.entries(item)) {
        if (method === 'parameters' || op.tags?.[0] === 'gateway') continue;
        expect(op.responses['429'], `${method} ${path}`).toEqual({ $ref: '#/components/responses/Gateway429' });
        expect(op['x-admin'] === true, `${method} ${path}`).toBe(path.startsWith('/admin/'));
        if (path.startsWith('/admin/')) expect(op.responses['403'], `${method} ${path}`).toEqual({ $ref: '#/components/responses/Gateway403' });
      }
    }
  });

  /** The paths the document lists as the gateway's own, each with its methods. */
  const ownPaths = (served: Document) =>
    Object.fromEntries(
      Object.entries(served.paths)
        .filter(([, item]) => Object.values(item).some((operation) => operation.tags?.[0] === 'gateway'))
        .map(([path, item]) => [path, Object.keys(item).sort()]),
    );

  it('lists the gateway’s own endpoints, as this port serves them', async () => {
    const served = await document();
    expect(ownPaths(served)).toEqual({
      '/': ['get'],
      '/health': ['get'],
      '/ready': ['get'],
      '/metrics': ['get'],
      '/openapi.json': ['get'],
      '/docs': ['get'],
      '/docs/swagger-ui.css': ['get'],
      '/docs/swagger-ui-bundle.js': ['get'],
      '/graphql': ['get', 'post'],
    });
    for (const path of Object.keys(ownPaths(served)).filter((path) => path !== '/graphql')) expect((await fetch(`${fx.gateway.url}${path}`)).status, path).toBe(200);
    // Production: no explorer page at /graphql.
    expect(JSON.stringify(served.paths['/graphql'])).not.toContain('text/html');
  });

  it('with ADMIN_PORT, leaves out what moved there: /metrics, and the services named by /ready', async () => {
    const gateway = await startGateway(fx.upstreams.urls, { NODE_ENV: 'development', ADMIN_PORT: String(await freePortBlock(1)) });
    try {
      const served = (await (await fetch(`${gateway.url}/openapi.json`)).json()) as Document;
      expect(Object.keys(ownPaths(served))).not.toContain('/metrics');
      expect((await fetch(`${gateway.url}/metrics`)).status).toBe(404);
      const ready = served.paths['/ready']?.get?.responses['200'] as { content: Record<string, { schema: { properties: Record<string, unknown> } }> };
      expect(Object.keys(ready.content['application/json']?.schema.properties ?? {})).toEqual(['status']);
      // Development: the explorer page is served at /graphql.
      expect(JSON.stringify(served.paths['/graphql'])).toContain('text/html');
    } finally {
      await gateway.close();
    }
  });
});

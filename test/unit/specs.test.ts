import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { Validator } from '@seriousme/openapi-schema-validator';
import { UPSTREAM_NAMES } from '../../shared/upstreams.js';
import { specPath } from '../../shared/upstreams.js';

interface Operation {
  operationId?: string;
  parameters?: unknown[];
  requestBody?: unknown;
  security?: unknown[];
  responses: Record<string, { $ref?: string; content?: Record<string, { schema?: unknown }> }>;
}

interface Spec {
  openapi: string;
  security?: unknown[];
  paths: Record<string, Record<string, Operation | unknown[]>>;
  components: { securitySchemes?: Record<string, unknown>; responses?: Record<string, { content?: Record<string, unknown> }> };
}

const METHODS = ['get', 'put', 'post', 'delete', 'patch'];
const specs = UPSTREAM_NAMES.map((name) => [name, parse(readFileSync(specPath(name), 'utf8')) as Spec] as const);

function operationsOf(spec: Spec): [string, string, Operation][] {
  return Object.entries(spec.paths).flatMap(([path, item]) =>
    Object.entries(item)
      .filter(([method]) => METHODS.includes(method))
      .map(([method, operation]) => [method, path, operation as Operation] as [string, string, Operation]),
  );
}

describe.each(specs)('the %s spec', (name, spec) => {
  it('is a valid OpenAPI 3 document', async () => {
    const result = await new Validator().validate(specPath(name));
    expect(result.errors ?? []).toEqual([]);
    expect(result.valid).toBe(true);
    expect(spec.openapi).toMatch(/^3\./);
  });

  it('declares the bearer security scheme', () => {
    expect(spec.components.securitySchemes?.bearerAuth).toEqual({ type: 'http', scheme: 'bearer', bearerFormat: 'JWT' });
  });

  it.each(operationsOf(spec).map(([method, path, operation]) => [`${method.toUpperCase()} ${path}`, operation] as const))(
    '%s has an operationId, typed responses and its documented errors',
    (_, operation) => {
      expect(operation.operationId).toMatch(/^[a-z][A-Za-z]+$/);
      const statuses = Object.keys(operation.responses);
      expect(statuses.some((status) => status.startsWith('2'))).toBe(true);
      for (const [status, response] of Object.entries(operation.responses)) {
        if (status === '204') continue;
        const resolved = response.$ref ? spec.components.responses?.[response.$ref.split('/').pop() ?? ''] : response;
        expect(resolved?.content?.['application/json'], `${status} has a JSON schema`).toBeDefined();
      }
      const takesInput = (operation.parameters?.length ?? 0) > 0 || operation.requestBody !== undefined;
      const hasQueryOrBody = operation.requestBody !== undefined || JSON.stringify(operation.parameters ?? []).includes('query');
      if (takesInput && hasQueryOrBody) expect(statuses, 'documents 422').toContain('422');
      const needsIdentity = (operation.security ?? spec.security ?? []).length > 0;
      if (needsIdentity) expect(statuses, 'documents 401').toContain('401');
    },
  );
});

describe('the specs together', () => {
  it('use operationIds that are unique across all services (one GraphQL schema is built from them)', () => {
    const ids = specs.flatMap(([, spec]) => operationsOf(spec).map(([, , operation]) => operation.operationId));
    expect(new Set(ids).size).toBe(ids.length);
  });

  it('offer the batch endpoints that cross-service GraphQL fields need', () => {
    const ids = new Set(specs.flatMap(([, spec]) => operationsOf(spec).map(([, , operation]) => operation.operationId)));
    for (const batch of ['entitlements', 'moviesByIds', 'channelsByIds', 'nowPlaying', 'usersByIds', 'subscriptionsByUserIds']) {
      expect(ids, batch).toContain(batch);
    }
  });
});

import { OpenAPIBackend, type Operation } from 'openapi-backend';
import addFormats from 'ajv-formats';
import { expect } from 'vitest';
import type { UpstreamName } from '../../shared/upstreams.js';
import { specPath } from '../../shared/upstreams.js';

export interface Answer {
  readonly status: number;
  readonly headers: Headers;
  readonly body: unknown;
}

/**
 * Calls a reference service over HTTP and checks the answer against the service's own spec: the
 * status is one the operation documents, the content type is JSON (none for 204), and the body
 * validates against the documented schema. Records which operations were exercised.
 */
export class SpecCheckedClient {
  /** One validated, compiled spec per service, whatever the number of clients. */
  private static readonly apis = new Map<UpstreamName, Promise<OpenAPIBackend>>();

  private constructor(
    private readonly api: OpenAPIBackend,
    private readonly baseUrl: string,
    /** The operations this client called (a set several clients may share). */
    readonly covered: Set<string>,
  ) {}

  private static api(name: UpstreamName): Promise<OpenAPIBackend> {
    let api = SpecCheckedClient.apis.get(name);
    if (!api) {
      // The specs themselves are validated by specs.test.ts: quick mode compiles each operation's
      // validators when a call first needs them.
      const backend = new OpenAPIBackend({
        definition: specPath(name),
        quick: true,
        strict: true,
        customizeAjv: (ajv) => {
          addFormats.default(ajv);
          return ajv;
        },
      });
      api = backend.init();
      SpecCheckedClient.apis.set(name, api);
    }
    return api;
  }

  /** The operationIds of a service's spec. */
  static async operationIdsOf(name: UpstreamName): Promise<string[]> {
    return (await SpecCheckedClient.api(name)).getOperations().map((operation) => operation.operationId ?? '');
  }

  static async create(name: UpstreamName, baseUrl: string, covered = new Set<string>()): Promise<SpecCheckedClient> {
    return new SpecCheckedClient(await SpecCheckedClient.api(name), baseUrl, covered);
  }

  async call(method: string, path: string, init: { headers?: Record<string, string>; json?: unknown; rawBody?: string } = {}): Promise<Answer> {
    const headers: Record<string, string> = { ...init.headers };
    let body: string | undefined = init.rawBody;
    if (init.json !== undefined) {
      body = JSON.stringify(init.json);
      headers['content-type'] = 'application/json';
    }
    const response = await fetch(this.baseUrl + path, { method, headers, body });
    const text = await response.text();
    const operation = this.api.router.matchOperation({ method, path: path.split('?')[0] ?? path, headers: {} }) as Operation | undefined;
    expect(operation, `${method} ${path} matches an operation of the spec`).toBeDefined();
    const { operationId = '', responses = {} } = operation as Operation;
    const where = `${operationId} ${method} ${path} -> ${response.status}`;
    expect(Object.keys(responses), `${where}: status documented`).toContain(String(response.status));
    let parsed: unknown;
    if (response.status === 204) {
      expect(text, `${where}: no body`).toBe('');
    } else {
      expect(response.headers.get('content-type'), `${where}: JSON`).toMatch(/^application\/json/);
      parsed = JSON.parse(text);
      const validation = this.api.validateResponse(parsed, operationId, response.status);
      expect(validation.errors, `${where}: body matches the spec`).toBeNull();
    }
    this.covered.add(operationId);
    return { status: response.status, headers: response.headers, body: parsed };
  }
}

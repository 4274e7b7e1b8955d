/** The one list of the six upstreams (shared/upstreams.ts), and everything written elsewhere that must agree with it. */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { allApiTypes } from '../../scripts/lib/api-types.js';
import { PROJECT_ROOT } from '../../shared/paths.js';
import { DEFAULT_SERVICES_BASE_PORT, servicePort, specPath, UPSTREAM_NAMES, UPSTREAMS } from '../../shared/upstreams.js';

const read = (file: string) => readFileSync(`${PROJECT_ROOT}${file}`, 'utf8');

describe('the upstream list', () => {
  it('is what .meshrc.yaml builds its sources from, in its order', () => {
    const { sources } = parse(read('.meshrc.yaml')) as { sources: { name: string; handler: { openapi: { source: string; endpoint: string } }; transforms: { prefix: { value: string; includeRootOperations: boolean } }[] }[] };
    expect(sources).toEqual(
      UPSTREAM_NAMES.map((name) => ({
        name: UPSTREAMS[name].meshSource,
        handler: { openapi: { source: `./schemas/${UPSTREAMS[name].spec}`, endpoint: `{env.${UPSTREAMS[name].envVar}}` } },
        transforms: [{ prefix: { value: `${UPSTREAMS[name].meshSource}_`, includeRootOperations: true } }],
      })),
    );
  });

  it('is the table of the reference services in docs/services.md: title, default port and spec, in its order', () => {
    const rows = [...read('docs/services.md').matchAll(/^\| ([^|`]+?) \| (\d{4}) \| `(schemas\/[\w-]+\.yaml)` \|/gm)].map(([, title, port, spec]) => [title, Number(port), spec]);
    expect(rows).toEqual(UPSTREAM_NAMES.map((name) => [UPSTREAMS[name].title, servicePort(name), `schemas/${UPSTREAMS[name].spec}`]));
    expect(servicePort('auth')).toBe(DEFAULT_SERVICES_BASE_PORT);
  });

  it('is the list of upstream URL variables in docs/configuration.md, each naming its service, in its order', () => {
    const rows = [...read('docs/configuration.md').matchAll(/^\| `([A-Z_]+_SERVICE_URL)` \| [^|]+ \| the ([^|]+) service \|$/gm)].map(([, variable, title]) => [variable, title]);
    expect(rows).toEqual(UPSTREAM_NAMES.map((name) => [UPSTREAMS[name].envVar, UPSTREAMS[name].title]));
  });

  it('names each service of docker-compose.yml, which runs that reference service', () => {
    const { services } = parse(read('docker-compose.yml'), { merge: true }) as { services: Record<string, { command?: string[] }> };
    for (const name of UPSTREAM_NAMES) expect(services[UPSTREAMS[name].composeService]?.command, name).toEqual(['node', 'dist/services/main.js', name]);
  });

  it("names each spec's GET /health operation", () => {
    for (const name of UPSTREAM_NAMES) {
      const spec = parse(readFileSync(specPath(name), 'utf8')) as { paths: Record<string, { get?: { operationId?: string } }> };
      expect(spec.paths['/health']?.get?.operationId, name).toBe(UPSTREAMS[name].healthOperation);
    }
  });

  it('has its specs’ types generated as committed (shared/api/, `npm run api-types`)', async () => {
    for (const [file, text] of await allApiTypes()) expect(readFileSync(file, 'utf8'), file).toBe(text);
  });
});

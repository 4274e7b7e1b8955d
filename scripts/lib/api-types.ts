import openapiTS, { astToString } from 'openapi-typescript';
import { pathToFileURL } from 'node:url';
import { PROJECT_ROOT } from '../../shared/paths.js';
import { UPSTREAM_NAMES, UPSTREAMS, specPath, type UpstreamName } from '../../shared/upstreams.js';

/** Where an upstream's generated types live: shared/api/<name>.d.ts. */
export function apiTypesPath(name: UpstreamName): string {
  return `${PROJECT_ROOT}shared/api/${name}.d.ts`;
}

/** The TypeScript types of an upstream's OpenAPI spec (paths, operations, components), as committed. */
export async function apiTypes(name: UpstreamName): Promise<string> {
  const ast = await openapiTS(pathToFileURL(specPath(name)));
  return `// Generated from schemas/${UPSTREAMS[name].spec} by \`npm run api-types\` (openapi-typescript): do not edit.\n${astToString(ast)}`;
}

/** Every upstream's generated types, by file. */
export async function allApiTypes(): Promise<Map<string, string>> {
  const files = await Promise.all(UPSTREAM_NAMES.map(async (name) => [apiTypesPath(name), await apiTypes(name)] as const));
  return new Map(files);
}

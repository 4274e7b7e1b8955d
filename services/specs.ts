import { fileURLToPath } from 'node:url';
import type { UpstreamName } from '../gateway/src/upstreams.js';

const SPEC_FILES: Readonly<Record<UpstreamName, string>> = {
  auth: 'authentication.yaml',
  users: 'user-management.yaml',
  ondemand: 'ondemand.yaml',
  livetv: 'live-tv.yaml',
  rights: 'rights-management.yaml',
  search: 'global-search.yaml',
};

/** Absolute path of the OpenAPI spec that the service implements. */
export function specPath(name: UpstreamName): string {
  return fileURLToPath(new URL(`../schemas/${SPEC_FILES[name]}`, import.meta.url));
}

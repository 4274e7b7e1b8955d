import { PROJECT_ROOT } from './paths.js';

/**
 * The six upstream services: their metric label, the environment variable that holds their base URL
 * (names from the design document), their place in the reference services' port block, their OpenAPI
 * spec in schemas/ and the GraphQL Mesh source built from it (.meshrc.yaml).
 */
export const UPSTREAM_NAMES = ['auth', 'users', 'ondemand', 'livetv', 'rights', 'search'] as const;

export type UpstreamName = (typeof UPSTREAM_NAMES)[number];

export interface UpstreamDefinition {
  readonly name: UpstreamName;
  readonly envVar: string;
  readonly portOffset: number;
  readonly title: string;
  /** File name of its OpenAPI spec in schemas/. */
  readonly spec: string;
  /** Name of its source in .meshrc.yaml (and the prefix of its generated fields). */
  readonly meshSource: string;
}

export const UPSTREAMS: Readonly<Record<UpstreamName, UpstreamDefinition>> = {
  auth: { name: 'auth', envVar: 'AUTHENTICATION_SERVICE_URL', portOffset: 0, title: 'authentication', spec: 'authentication.yaml', meshSource: 'Authentication' },
  users: { name: 'users', envVar: 'USER_MANAGEMENT_SERVICE_URL', portOffset: 1, title: 'user management', spec: 'user-management.yaml', meshSource: 'UserManagement' },
  ondemand: { name: 'ondemand', envVar: 'ONDEMAND_SERVICE_URL', portOffset: 2, title: 'on-demand', spec: 'ondemand.yaml', meshSource: 'OnDemand' },
  livetv: { name: 'livetv', envVar: 'LIVE_TV_SERVICE_URL', portOffset: 3, title: 'live TV', spec: 'live-tv.yaml', meshSource: 'LiveTv' },
  rights: { name: 'rights', envVar: 'RIGHTS_MANAGEMENT_SERVICE_URL', portOffset: 4, title: 'rights management', spec: 'rights-management.yaml', meshSource: 'RightsManagement' },
  search: { name: 'search', envVar: 'GLOBAL_SEARCH_SERVICE_URL', portOffset: 5, title: 'global search', spec: 'global-search.yaml', meshSource: 'GlobalSearch' },
};

export const DEFAULT_SERVICES_BASE_PORT = 4101;

export type UpstreamUrls = Record<UpstreamName, string>;

/** Base URLs of the reference services when their port block starts at `basePort`. */
export function referenceServiceUrls(basePort: number): UpstreamUrls {
  const urls = {} as UpstreamUrls;
  for (const name of UPSTREAM_NAMES) {
    urls[name] = `http://127.0.0.1:${basePort + UPSTREAMS[name].portOffset}`;
  }
  return urls;
}

/** Absolute path of an upstream's OpenAPI spec. */
export function specPath(name: UpstreamName): string {
  return `${PROJECT_ROOT}schemas/${UPSTREAMS[name].spec}`;
}

/** The environment variables that point a gateway (or a service) at these upstream URLs. */
export function upstreamEnvironment(urls: UpstreamUrls): Record<string, string> {
  return Object.fromEntries(UPSTREAM_NAMES.map((name) => [UPSTREAMS[name].envVar, urls[name]]));
}

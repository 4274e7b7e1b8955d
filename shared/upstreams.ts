import { PROJECT_ROOT } from './paths.js';

/**
 * The six upstream services, the one list the gateway, the reference services, the launcher, the tests
 * and the benchmarks derive from: their metric label, title, the environment variable that holds their
 * base URL (names from the design document), their place in the reference services' port block, their
 * OpenAPI spec in schemas/, the GraphQL Mesh source built from it (.meshrc.yaml, checked by a test), the
 * spec's health operation and their service name in docker-compose.yml.
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
  /** The operationId of its spec's `GET /health`. */
  readonly healthOperation: string;
  /** Its service (and host) name in docker-compose.yml. */
  readonly composeService: string;
}

export const UPSTREAMS: Readonly<Record<UpstreamName, UpstreamDefinition>> = {
  auth: { name: 'auth', envVar: 'AUTHENTICATION_SERVICE_URL', portOffset: 0, title: 'authentication', spec: 'authentication.yaml', meshSource: 'Authentication', healthOperation: 'authHealth', composeService: 'authentication_service' },
  users: { name: 'users', envVar: 'USER_MANAGEMENT_SERVICE_URL', portOffset: 1, title: 'user management', spec: 'user-management.yaml', meshSource: 'UserManagement', healthOperation: 'usersHealth', composeService: 'user_management_service' },
  ondemand: { name: 'ondemand', envVar: 'ONDEMAND_SERVICE_URL', portOffset: 2, title: 'on-demand', spec: 'ondemand.yaml', meshSource: 'OnDemand', healthOperation: 'ondemandHealth', composeService: 'ondemand_service' },
  livetv: { name: 'livetv', envVar: 'LIVE_TV_SERVICE_URL', portOffset: 3, title: 'live TV', spec: 'live-tv.yaml', meshSource: 'LiveTv', healthOperation: 'livetvHealth', composeService: 'live_tv_service' },
  rights: { name: 'rights', envVar: 'RIGHTS_MANAGEMENT_SERVICE_URL', portOffset: 4, title: 'rights management', spec: 'rights-management.yaml', meshSource: 'RightsManagement', healthOperation: 'rightsHealth', composeService: 'rights_management_service' },
  search: { name: 'search', envVar: 'GLOBAL_SEARCH_SERVICE_URL', portOffset: 5, title: 'global search', spec: 'global-search.yaml', meshSource: 'GlobalSearch', healthOperation: 'searchHealth', composeService: 'global_search_service' },
};

export const DEFAULT_SERVICES_BASE_PORT = 4101;

/** The roles a token and the user store know: every user has `user`; `admin` opens `/admin/*` and the admin fields. */
export const ROLES = { user: 'user', admin: 'admin' } as const;
export type Role = (typeof ROLES)[keyof typeof ROLES];

/** What rights management grants entitlements to: `movie:<id>` (on-demand) and `channel:<id>` (live TV). */
export type ContentKind = 'movie' | 'channel';
export type ContentId = `${ContentKind}:${string}`;

export function contentId(kind: ContentKind, id: string): ContentId {
  return `${kind}:${id}`;
}

export type UpstreamUrls = Record<UpstreamName, string>;

/** The port of an upstream's reference service when the block starts at `basePort`. */
export function servicePort(name: UpstreamName, basePort: number = DEFAULT_SERVICES_BASE_PORT): number {
  return basePort + UPSTREAMS[name].portOffset;
}

/** Base URLs of the reference services when their port block starts at `basePort`. */
export function referenceServiceUrls(basePort: number): UpstreamUrls {
  const urls = {} as UpstreamUrls;
  for (const name of UPSTREAM_NAMES) urls[name] = `http://127.0.0.1:${servicePort(name, basePort)}`;
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

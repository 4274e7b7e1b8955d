/**
 * The six upstream services: their metric label, the environment variable that holds their base URL
 * (names from the design document) and their place in the reference services' port block.
 */
export const UPSTREAM_NAMES = ['auth', 'users', 'ondemand', 'livetv', 'rights', 'search'] as const;

export type UpstreamName = (typeof UPSTREAM_NAMES)[number];

export interface UpstreamDefinition {
  readonly name: UpstreamName;
  readonly envVar: string;
  readonly portOffset: number;
  readonly title: string;
}

export const UPSTREAMS: Readonly<Record<UpstreamName, UpstreamDefinition>> = {
  auth: { name: 'auth', envVar: 'AUTHENTICATION_SERVICE_URL', portOffset: 0, title: 'authentication' },
  users: { name: 'users', envVar: 'USER_MANAGEMENT_SERVICE_URL', portOffset: 1, title: 'user management' },
  ondemand: { name: 'ondemand', envVar: 'ONDEMAND_SERVICE_URL', portOffset: 2, title: 'on-demand' },
  livetv: { name: 'livetv', envVar: 'LIVE_TV_SERVICE_URL', portOffset: 3, title: 'live TV' },
  rights: { name: 'rights', envVar: 'RIGHTS_MANAGEMENT_SERVICE_URL', portOffset: 4, title: 'rights management' },
  search: { name: 'search', envVar: 'GLOBAL_SEARCH_SERVICE_URL', portOffset: 5, title: 'global search' },
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

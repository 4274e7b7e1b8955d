/**
 * One generated operation of a Mesh source, called in-process ("in-context SDK"). It is always given its
 * own selection set and never the client's `info`: delegating with the client's operation would carry
 * the client's variables into the source's request.
 */
export type SourceOperation = (options: { args?: Record<string, unknown>; context: unknown; selectionSet: string }) => Promise<unknown>;

type Operations<Names extends string> = { readonly [Name in Names]: SourceOperation };

/** The generated operations the contract's resolvers call, per Mesh source (prefixed as in .meshrc.yaml). */
export interface AuthenticationSdk {
  readonly Mutation: Operations<'Authentication_login' | 'Authentication_register'>;
}
export interface UserManagementSdk {
  readonly Query: Operations<'UserManagement_me' | 'UserManagement_adminUsers'>;
  readonly Mutation: Operations<'UserManagement_adminSetUserRoles'>;
}
export interface OnDemandSdk {
  readonly Query: Operations<'OnDemand_movies' | 'OnDemand_moviesByIds' | 'OnDemand_playMovie'>;
  readonly Mutation: Operations<'OnDemand_adminCreateMovie' | 'OnDemand_adminUpdateMovie' | 'OnDemand_adminDeleteMovie'>;
}
export interface LiveTvSdk {
  readonly Query: Operations<'LiveTv_channels' | 'LiveTv_channelsByIds' | 'LiveTv_channelSchedule' | 'LiveTv_nowPlaying' | 'LiveTv_playChannel'>;
}
export interface RightsManagementSdk {
  readonly Query: Operations<'RightsManagement_plans' | 'RightsManagement_entitlements' | 'RightsManagement_subscriptionsByUserIds'>;
  readonly Mutation: Operations<'RightsManagement_subscribe'>;
}
export interface GlobalSearchSdk {
  readonly Query: Operations<'GlobalSearch_search'>;
}

/** What the gateway puts in every GraphQL request's context, beside Mesh's own entries. */
export interface RequestIdentity {
  readonly sub: string;
  readonly roles: readonly string[];
  /** The roles as the `X-User-Roles` header carries them. */
  readonly rolesHeader: string;
}

export interface GatewayContext {
  readonly requestId: string;
  readonly user?: RequestIdentity;
  readonly headers: Readonly<Record<string, string | undefined>>;
  readonly Authentication: AuthenticationSdk;
  readonly UserManagement: UserManagementSdk;
  readonly OnDemand: OnDemandSdk;
  readonly LiveTv: LiveTvSdk;
  readonly RightsManagement: RightsManagementSdk;
  readonly GlobalSearch: GlobalSearchSdk;
}

import type { GraphQLResolveInfo } from 'graphql';
import type { GatewayContext } from './context.js';
import { CHANNEL_FIELDS, loadersOf, MOVIE_FIELDS, PROGRAM_FIELDS, type ChannelRecord, type MovieRecord } from './loaders.js';

type Args = Record<string, unknown>;
type Resolver<TRoot = unknown> = (root: TRoot, args: Args, context: GatewayContext, info: GraphQLResolveInfo) => unknown;

const USER_FIELDS = 'id username email roles';
const TOKEN_FIELDS = 'access_token token_type expires_in refresh_token';
const PLAYBACK_FIELDS = 'url expiresAt';

/** Mesh hands date-times over as Date objects; the contract's fields are ISO 8601 strings. */
function isoString(value: unknown): string {
  return value instanceof Date ? value.toISOString() : String(value);
}

/** Drops arguments the client left out, so the upstream applies its own defaults. */
function given(args: Args): Args {
  return Object.fromEntries(Object.entries(args).filter(([, value]) => value !== undefined && value !== null));
}

const Query: Record<string, Resolver> = {
  movies: (root, args, context, info) =>
    context.OnDemand.Query.OnDemand_movies({
      root,
      args: given(args),
      context,
      info,
      selectionSet: `{ ... on OnDemand_MovieList { items { ${MOVIE_FIELDS} } total } }`,
    }),
  movie: (_root, { id }, context) => loadersOf(context).movies.load(id as string),
  channels: (root, _args, context, info) => context.LiveTv.Query.LiveTv_channels({ root, context, info, selectionSet: `{ ${CHANNEL_FIELDS} }` }),
  channel: (_root, { id }, context) => loadersOf(context).channels.load(id as string),
  me: (root, _args, context, info) =>
    context.UserManagement.Query.UserManagement_me({ root, context, info, selectionSet: `{ ... on UserManagement_User { ${USER_FIELDS} } }` }),
  plans: (root, _args, context, info) => context.RightsManagement.Query.RightsManagement_plans({ root, context, info, selectionSet: '{ id name }' }),
  search: (root, args, context, info) =>
    context.GlobalSearch.Query.GlobalSearch_search({
      root,
      args: given(args),
      context,
      info,
      selectionSet: '{ ... on GlobalSearch_SearchResults { items { kind id title } total } }',
    }),
  playMovie: (root, { id }, context, info) =>
    context.OnDemand.Query.OnDemand_playMovie({ root, args: { movieId: id }, context, info, selectionSet: `{ ... on OnDemand_Playback { ${PLAYBACK_FIELDS} } }` }),
  playChannel: (root, { id }, context, info) =>
    context.LiveTv.Query.LiveTv_playChannel({ root, args: { channelId: id }, context, info, selectionSet: `{ ... on LiveTv_Playback { ${PLAYBACK_FIELDS} } }` }),
  adminUsers: (root, args, context, info) =>
    context.UserManagement.Query.UserManagement_adminUsers({ root, args: given(args), context, info, selectionSet: `{ ... on UserManagement_User { ${USER_FIELDS} } }` }),
};

const Mutation: Record<string, Resolver> = {
  login: (root, args, context, info) =>
    context.Authentication.Mutation.Authentication_login({ root, args: { input: args }, context, info, selectionSet: `{ ... on Authentication_Token { ${TOKEN_FIELDS} } }` }),
  register: (root, args, context, info) =>
    context.Authentication.Mutation.Authentication_register({ root, args: { input: args }, context, info, selectionSet: `{ ... on Authentication_User { ${USER_FIELDS} } }` }),
  subscribe: (root, args, context, info) =>
    context.RightsManagement.Mutation.RightsManagement_subscribe({
      root,
      args: { input: args },
      context,
      info,
      selectionSet: '{ ... on RightsManagement_UserSubscription { planId status } }',
    }),
  adminCreateMovie: (root, { input }, context, info) =>
    context.OnDemand.Mutation.OnDemand_adminCreateMovie({ root, args: { input: given(input as Args) }, context, info, selectionSet: `{ ... on OnDemand_Movie { ${MOVIE_FIELDS} } }` }),
  adminUpdateMovie: (root, { id, input }, context, info) =>
    context.OnDemand.Mutation.OnDemand_adminUpdateMovie({ root, args: { id, input: given(input as Args) }, context, info, selectionSet: `{ ... on OnDemand_Movie { ${MOVIE_FIELDS} } }` }),
  adminDeleteMovie: async (root, { id }, context, info) => {
    await context.OnDemand.Mutation.OnDemand_adminDeleteMovie({ root, args: { id }, context, info, selectionSet: '{ __typename }' });
    return true;
  },
  adminSetUserRoles: (root, { id, roles }, context, info) =>
    context.UserManagement.Mutation.UserManagement_adminSetUserRoles({
      root,
      args: { id, input: { roles } },
      context,
      info,
      selectionSet: `{ ... on UserManagement_User { ${USER_FIELDS} } }`,
    }),
};

/** Cross-service fields: each goes through the request's DataLoader, one batched call per service. */
export const resolvers = {
  Query,
  Mutation,
  Movie: {
    entitlement: (movie: MovieRecord, _args: Args, context: GatewayContext) => loadersOf(context).entitlements.load(`movie:${movie.id}`),
  },
  Channel: {
    entitlement: (channel: ChannelRecord, _args: Args, context: GatewayContext) => loadersOf(context).entitlements.load(`channel:${channel.id}`),
    nowPlaying: (channel: ChannelRecord, _args: Args, context: GatewayContext) => loadersOf(context).nowPlaying.load(channel.id),
    schedule: (channel: ChannelRecord, _args: Args, context: GatewayContext, info: GraphQLResolveInfo) =>
      context.LiveTv.Query.LiveTv_channelSchedule({ root: channel, args: { id: channel.id }, context, info, selectionSet: `{ ... on LiveTv_Program { ${PROGRAM_FIELDS} } }` }),
  },
  Program: {
    start: (program: { start: unknown }) => isoString(program.start),
    end: (program: { end: unknown }) => isoString(program.end),
  },
  Playback: {
    expiresAt: (playback: { expiresAt: unknown }) => isoString(playback.expiresAt),
  },
  SearchHit: {
    movie: (hit: { kind: string; id: string }, _args: Args, context: GatewayContext) => (hit.kind === 'movie' ? loadersOf(context).movies.load(hit.id) : null),
    channel: (hit: { kind: string; id: string }, _args: Args, context: GatewayContext) => (hit.kind === 'channel' ? loadersOf(context).channels.load(hit.id) : null),
  },
  User: {
    subscription: (user: { id: string }, _args: Args, context: GatewayContext) => loadersOf(context).subscriptions.load(user.id),
  },
};

export default resolvers;

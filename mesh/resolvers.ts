import type { GatewayContext } from './context.js';
import { CHANNEL_FIELDS, loadersOf, MOVIE_FIELDS, type ChannelRecord, type MovieRecord } from './loaders.js';
import { callSource } from './source.js';

type Args = Record<string, unknown>;
type Resolver = (root: unknown, args: Args, context: GatewayContext) => unknown;

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
  movies: (_root, args, context) => callSource(context, 'movies', given(args), `{ ... on OnDemand_MovieList { items { ${MOVIE_FIELDS} } total } }`),
  movie: (_root, { id }, context) => loadersOf(context).movies.load(id as string),
  channels: (_root, _args, context) => callSource(context, 'channels', {}, `{ ${CHANNEL_FIELDS} }`),
  channel: (_root, { id }, context) => loadersOf(context).channels.load(id as string),
  me: (_root, _args, context) => callSource(context, 'me', {}, `{ ... on UserManagement_User { ${USER_FIELDS} } }`),
  plans: (_root, _args, context) => callSource(context, 'plans', {}, '{ id name }'),
  search: (_root, args, context) => callSource(context, 'search', given(args), '{ ... on GlobalSearch_SearchResults { items { kind id title } total } }'),
  playMovie: (_root, { id }, context) => callSource(context, 'playMovie', { id }, `{ ... on OnDemand_Playback { ${PLAYBACK_FIELDS} } }`),
  playChannel: (_root, { id }, context) => callSource(context, 'playChannel', { id }, `{ ... on LiveTv_Playback { ${PLAYBACK_FIELDS} } }`),
  adminUsers: (_root, args, context) => callSource(context, 'adminUsers', given(args), `{ ... on UserManagement_User { ${USER_FIELDS} } }`),
};

const Mutation: Record<string, Resolver> = {
  login: (_root, args, context) => callSource(context, 'login', { input: args }, `{ ... on Authentication_Token { ${TOKEN_FIELDS} } }`),
  register: (_root, args, context) => callSource(context, 'register', { input: args }, `{ ... on Authentication_User { ${USER_FIELDS} } }`),
  subscribe: (_root, args, context) => callSource(context, 'subscribe', { input: args }, '{ ... on RightsManagement_UserSubscription { planId status } }'),
  adminCreateMovie: (_root, { input }, context) => callSource(context, 'adminCreateMovie', { input: given(input as Args) }, `{ ... on OnDemand_Movie { ${MOVIE_FIELDS} } }`),
  adminUpdateMovie: (_root, { id, input }, context) =>
    callSource(context, 'adminUpdateMovie', { id, input: given(input as Args) }, `{ ... on OnDemand_Movie { ${MOVIE_FIELDS} } }`),
  adminDeleteMovie: async (_root, { id }, context) => {
    await callSource(context, 'adminDeleteMovie', { id }, '{ __typename }');
    return true;
  },
  adminSetUserRoles: (_root, { id, roles }, context) => callSource(context, 'adminSetUserRoles', { id, input: { roles } }, `{ ... on UserManagement_User { ${USER_FIELDS} } }`),
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
    schedule: (channel: ChannelRecord, _args: Args, context: GatewayContext) => loadersOf(context).schedules.load(channel.id),
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

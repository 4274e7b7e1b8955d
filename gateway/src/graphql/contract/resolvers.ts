import type { GatewayContext } from './context.js';
import { loadersOf } from './loaders.js';
import { contentId } from '../../../../shared/upstreams.js';
import type { Channel, Movie } from '../../../../shared/records.js';
import { callSource } from './source.js';
import { onAirWith, type LiveFeed } from './live.js';
import { GatewayError } from '../../errors.js';

type Args = Record<string, unknown>;
type Resolver = (root: unknown, args: Args, context: GatewayContext) => unknown;

/** The contract's date-times are ISO 8601 in UTC with milliseconds, whatever form the upstream wrote. */
function isoString(value: unknown): string {
  const date = value instanceof Date ? value : new Date(String(value));
  return Number.isNaN(date.getTime()) ? String(value) : date.toISOString();
}

/** Drops arguments the client left out, so the upstream applies its own defaults. */
function given(args: Args): Args {
  return Object.fromEntries(Object.entries(args).filter(([, value]) => value !== undefined && value !== null));
}

const Query: Record<string, Resolver> = {
  movies: (_root, args, context) => callSource(context, 'movies', given(args)),
  movie: (_root, { id }, context) => loadersOf(context).movies.load(id as string),
  channels: (_root, _args, context) => callSource(context, 'channels', {}),
  channel: (_root, { id }, context) => loadersOf(context).channels.load(id as string),
  me: (_root, _args, context) => callSource(context, 'me', {}),
  plans: (_root, _args, context) => callSource(context, 'plans', {}),
  search: (_root, args, context) => callSource(context, 'search', given(args)),
  playMovie: (_root, { id }, context) => callSource(context, 'playMovie', { id }),
  playChannel: (_root, { id }, context) => callSource(context, 'playChannel', { id }),
  adminUsers: (_root, args, context) => callSource(context, 'adminUsers', given(args)),
};

const Mutation: Record<string, Resolver> = {
  login: (_root, args, context) => callSource(context, 'login', { input: args }),
  register: (_root, args, context) => callSource(context, 'register', { input: args }),
  subscribe: (_root, args, context) => callSource(context, 'subscribe', { input: args }),
  adminCreateMovie: (_root, { input }, context) => callSource(context, 'adminCreateMovie', { input: given(input as Args) }),
  adminUpdateMovie: (_root, { id, input }, context) =>
    callSource(context, 'adminUpdateMovie', { id, input: given(input as Args) }),
  adminDeleteMovie: async (_root, { id }, context) => {
    await callSource(context, 'adminDeleteMovie', { id });
    return true;
  },
  adminSetUserRoles: (_root, { id, roles }, context) => callSource(context, 'adminSetUserRoles', { id, input: { roles } }),
  adminCreateChannel: (_root, { input }, context) => callSource(context, 'adminCreateChannel', { input }),
  adminUpdateChannel: (_root, { id, input }, context) => callSource(context, 'adminUpdateChannel', { id, input }),
  adminDeleteChannel: async (_root, { id }, context) => {
    await callSource(context, 'adminDeleteChannel', { id });
    return true;
  },
};

function liveFeedOf(context: GatewayContext): LiveFeed {
  if (!context.live) throw new GatewayError('BAD_USER_INPUT', 'Subscriptions are served over GraphQL over SSE (Accept: text/event-stream) or graphql-ws');
  return context.live;
}

/**
 * Live updates: the context's feed (one per replica) tells what to emit; each emission is then resolved
 * for the subscriber like a query result (its own context, loaders and permissions).
 */
const Subscription = {
  nowPlaying: {
    subscribe: (_root: unknown, { channelIds }: Args, context: GatewayContext) => liveFeedOf(context).nowPlaying(channelIds as string[], context.signal),
    resolve: (payload: unknown) => payload,
  },
  channelUpdated: {
    subscribe: (_root: unknown, { id }: Args, context: GatewayContext) => liveFeedOf(context).channelUpdated(id as string, context.signal),
    resolve: (payload: unknown) => payload,
  },
};

/** Cross-service fields: each goes through the request's DataLoader, one batched call per service. */
export const resolvers = {
  Query,
  Mutation,
  Subscription,
  Movie: {
    entitlement: (movie: Movie, _args: Args, context: GatewayContext) => loadersOf(context).entitlements.load(contentId('movie', movie.id)),
  },
  Channel: {
    entitlement: (channel: Channel, _args: Args, context: GatewayContext) => loadersOf(context).entitlements.load(contentId('channel', channel.id)),
    // A channel a live update carries comes with its programme on air (read once for every subscriber).
    nowPlaying: (channel: Channel, _args: Args, context: GatewayContext) => {
      const known = onAirWith(channel);
      return known !== undefined ? known : loadersOf(context).nowPlaying.load(channel.id);
    },
    schedule: (channel: Channel, _args: Args, context: GatewayContext) => loadersOf(context).schedules.load(channel.id),
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

import DataLoader from 'dataloader';
import type { GatewayContext } from './context.js';
import { callSource } from './source.js';
import type { Channel, ChannelBatch, Entitlement, EntitlementBatch, Movie, MovieBatch, NowPlayingBatch, Program, ScheduleBatch, SubscriptionBatch, SubscriptionRecord } from '../../../../shared/records.js';

/** The batch endpoints take at most 200 ids (their specs' maxItems). */
const MAX_BATCH = 200;

export interface Loaders {
  readonly movies: DataLoader<string, Movie | null>;
  readonly channels: DataLoader<string, Channel | null>;
  readonly nowPlaying: DataLoader<string, Program | null>;
  readonly schedules: DataLoader<string, Program[]>;
  /** Keyed by content id: `movie:<id>` or `channel:<id>`. */
  readonly entitlements: DataLoader<string, Entitlement>;
  readonly subscriptions: DataLoader<string, SubscriptionRecord | null>;
}

function byKey<T>(keys: readonly string[], items: readonly T[], keyOf: (item: T) => string): (T | null)[] {
  const found = new Map(items.map((item) => [keyOf(item), item]));
  return keys.map((key) => found.get(key) ?? null);
}

function createLoaders(context: GatewayContext): Loaders {
  const options = { maxBatchSize: MAX_BATCH };
  // With tracing, each batch is a span of its own (not each field), the parent of its upstream call.
  // A batch's ids come from the clients' `id` arguments (movie, channel) or from other answers.
  const names = { ids: 'id' };
  const call = <T>(operationId: string, args: Record<string, readonly string[]>): Promise<T> =>
    context.tracing
      ? context.tracing.batch(operationId, Object.values(args)[0]?.length ?? 0, (span) => callSource<T>({ ...context, traceParent: span }, operationId, args, names))
      : callSource<T>(context, operationId, args, names);
  return {
    movies: new DataLoader(async (ids) => {
      const batch = await call<MovieBatch>('moviesByIds', { ids });
      return byKey(ids, batch.items, (movie) => movie.id);
    }, options),

    channels: new DataLoader(async (ids) => {
      const batch = await call<ChannelBatch>('channelsByIds', { ids });
      return byKey(ids, batch.items, (channel) => channel.id);
    }, options),

    nowPlaying: new DataLoader(async (channelIds) => {
      const batch = await call<NowPlayingBatch>('nowPlaying', { channelIds });
      return byKey(channelIds, batch.items, (item) => item.channelId).map((item) => item?.program ?? null);
    }, options),

    schedules: new DataLoader(async (channelIds) => {
      const batch = await call<ScheduleBatch>('schedulesByChannelIds', { channelIds });
      return byKey(channelIds, batch.items, (item) => item.channelId).map((item) => item?.programs ?? []);
    }, options),

    entitlements: new DataLoader(async (contentIds) => {
      const batch = await call<EntitlementBatch>('entitlements', { contentIds });
      return byKey(contentIds, batch.items, (item) => item.contentId).map(
        (item, index) => item ?? { contentId: contentIds[index] as string, canPlay: false, reason: 'unknown_content' },
      );
    }, options),

    subscriptions: new DataLoader(async (userIds) => {
      const batch = await call<SubscriptionBatch>('subscriptionsByUserIds', { userIds });
      return byKey(userIds, batch.items, (item) => item.userId);
    }, options),
  };
}

const perRequest = new WeakMap<object, Loaders>();

/** The request's DataLoaders: created on first use, gone with the request's context. */
export function loadersOf(context: GatewayContext): Loaders {
  let loaders = perRequest.get(context);
  if (!loaders) {
    loaders = createLoaders(context);
    perRequest.set(context, loaders);
  }
  return loaders;
}

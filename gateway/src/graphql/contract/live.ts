import type { Channel, Program } from '../../../../shared/records.js';

/** One emission of `nowPlaying`: a channel and the programme on air on it (null: none). */
export interface NowPlayingUpdate {
  readonly channel: Channel;
  readonly program: Program | null;
}

/**
 * What subscriptions emit, from one feed per replica: whoever listens gets the same objects, read once
 * from the upstream. Each stream ends when its consumer returns it (or `signal` aborts).
 */
export interface LiveFeed {
  nowPlaying(channelIds: readonly string[], signal: AbortSignal): AsyncIterableIterator<NowPlayingUpdate>;
  channelUpdated(id: string, signal: AbortSignal): AsyncIterableIterator<Channel>;
}

/** A subscription's client stopped reading: its stream ends rather than hold more for it. */
export class FellBehind extends Error {
  constructor() {
    super('This subscription fell behind: its client did not read the updates');
    this.name = 'FellBehind';
  }
}

const onAir = new WeakMap<Channel, Program | null>();

/** A channel the feed read with its programme on air: `Channel.nowPlaying` answers it without a call. */
export function withOnAir(channel: Channel, program: Program | null): Channel {
  onAir.set(channel, program);
  return channel;
}

/** The programme on air a live update's channel came with; undefined when it came with none. */
export function onAirWith(channel: Channel): Program | null | undefined {
  return onAir.get(channel);
}

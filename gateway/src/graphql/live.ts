import { createHash, randomUUID } from 'node:crypto';
import DataLoader from 'dataloader';
import type { Change, Invalidations } from '../cluster/index.js';
import type { Logger } from '../observability/logger.js';
import type { Channel, ChannelBatch, NowPlayingBatch, Program } from '../../../shared/records.js';
import type { GatewayContext } from './contract/context.js';
import { FellBehind, withOnAir, type LiveFeed, type NowPlayingUpdate } from './contract/live.js';
import { callSource } from './contract/source.js';
import { PullStream } from './pull-stream.js';

/** A channel as read once for every listener on this replica; null when it is gone. */
interface Snapshot {
  readonly channel: Channel;
  readonly program: Program | null;
  /** What the channel's record and its programme on air were, to emit only what changed. */
  readonly channelDigest: string;
  readonly programDigest: string;
}

/**
 * Events a listener has not taken yet: past them it fell behind (it does not read), and its stream ends.
 * A `nowPlaying` of many channels gets two per channel (a first read emits one for each at once).
 */
const MAX_UNREAD = 32;
/** The batch endpoints take at most 200 ids (their specs' maxItems). */
const MAX_BATCH = 200;
/** A boundary read a moment after the programme ends, so that the upstream's clock has passed it too. */
const BOUNDARY_MARGIN_MS = 50;
/** Nothing on air, or a read that failed: tried again, waiting longer each time, up to this. */
const MAX_RETRY_MS = 60_000;
const FIRST_RETRY_MS = 250;
/** setTimeout's longest wait. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** The live TV operations that change one channel, by its `id`: the others (a create) change nothing watched. */
const CHANNEL_CHANGES = new Set(['adminUpdateChannel', 'adminDeleteChannel']);

const digestOf = (value: unknown) => createHash('sha256').update(JSON.stringify(value)).digest('base64url');

/**
 * One consumer's stream: events pushed without waiting, at most MAX_UNREAD of them unread; past that it
 * fails with FellBehind (its client does not read). `onStop` runs once, however it ends.
 */
class Listener<T> {
  readonly stream: PullStream<T>;

  constructor(onStop: () => void, signal: AbortSignal, capacity = MAX_UNREAD) {
    this.stream = new PullStream<T>(capacity, onStop, () => new FellBehind());
    signal.addEventListener('abort', () => void this.stream.return(), { once: true });
  }

  send(value: T): void {
    this.stream.push(value);
  }

  end(error?: Error): void {
    if (error) this.stream.fail(error);
    else this.stream.end();
  }
}

interface Watched {
  readonly nowPlaying: Set<Listener<NowPlayingUpdate>>;
  readonly updated: Set<Listener<Channel>>;
  snapshot: Snapshot | undefined;
  /** The first read: listeners that come meanwhile wait for it. */
  first: Promise<Snapshot | null>;
  timer: NodeJS.Timeout | undefined;
  retryMs: number;
  /** A read is on its way: a change meanwhile is read after it (`again`), never beside it (answers could cross). */
  reading: boolean;
  again: 'boundary' | 'change' | undefined;
}

export interface LiveChannelsOptions {
  readonly context: () => GatewayContext;
  readonly invalidations: Invalidations;
  readonly logger: Logger;
  readonly now?: () => number;
}

/**
 * The live channels this replica's subscribers watch, each read once for all of them: when the first
 * listener comes, when its programme on air ends (a timer from the schedule's end time: no polling per
 * subscriber), and when the invalidation bus says the live TV service changed (an admin's edit through
 * any replica, or one the service announced itself). Every listener of a channel gets the same
 * objects; a channel no one watches any more is forgotten, its timer cleared.
 */
export class LiveChannels implements LiveFeed {
  private readonly watched = new Map<string, Watched>();
  private readonly reads: DataLoader<string, Snapshot | null>;
  private closed = false;
  private readonly now: () => number;

  constructor(private readonly options: LiveChannelsOptions) {
    this.now = options.now ?? Date.now;
    this.reads = new DataLoader((ids) => this.read(ids), { cache: false, maxBatchSize: MAX_BATCH });
    options.invalidations.onInvalidate((upstream, change) => {
      if (upstream === 'livetv') this.changed(change);
    });
    // Back on the bus after an outage: changes may have gone unheard meanwhile.
    options.invalidations.onTrust((trusted) => {
      if (trusted) this.changed(undefined);
    });
  }

  /** How many channels are watched (a gauge, and tests). */
  get size(): number {
    return this.watched.size;
  }

  nowPlaying(channelIds: readonly string[], signal: AbortSignal): AsyncIterableIterator<NowPlayingUpdate> {
    const ids = [...new Set(channelIds)];
    const listener: Listener<NowPlayingUpdate> = new Listener(() => this.forget(ids, (watched) => watched.nowPlaying.delete(listener)), signal, Math.max(MAX_UNREAD, 2 * ids.length));
    for (const id of ids) {
      const watched = this.watch(id);
      watched.nowPlaying.add(listener);
      // What is known when the first read is done (a later listener gets today's, read since).
      void watched.first.then(() => {
        const snapshot = watched.snapshot;
        if (snapshot && watched.nowPlaying.has(listener)) listener.send({ channel: snapshot.channel, program: snapshot.program });
      }, (error: unknown) => listener.end(error instanceof Error ? error : new Error(String(error))));
    }
    return listener.stream;
  }

  channelUpdated(id: string, signal: AbortSignal): AsyncIterableIterator<Channel> {
    const listener: Listener<Channel> = new Listener(() => this.forget([id], (watched) => watched.updated.delete(listener)), signal);
    const watched = this.watch(id);
    watched.updated.add(listener);
    void watched.first.then((snapshot) => {
      // No such channel: nothing to follow.
      if (snapshot === null) listener.end();
    }, (error: unknown) => listener.end(error instanceof Error ? error : new Error(String(error))));
    return listener.stream;
  }

  /** Ends every stream: their clients resubscribe (another replica, when this one is shutting down). */
  close(): void {
    this.closed = true;
    for (const watched of this.watched.values()) {
      for (const listener of [...watched.nowPlaying, ...watched.updated]) listener.end();
      clearTimeout(watched.timer);
    }
    this.watched.clear();
  }

  private watch(id: string): Watched {
    const known = this.watched.get(id);
    if (known) return known;
    const watched: Watched = { nowPlaying: new Set(), updated: new Set(), snapshot: undefined, first: Promise.resolve(null), timer: undefined, retryMs: FIRST_RETRY_MS, reading: true, again: undefined };
    this.watched.set(id, watched);
    watched.first = this.reads.load(id).then((snapshot) => {
      watched.reading = false;
      if (this.watched.get(id) === watched) {
        this.apply(id, watched, snapshot, 'first');
        this.readAgain(id, watched);
      }
      return snapshot;
    });
    // A first read that failed ends its listeners (above); the channel is read again by the next one.
    watched.first.catch(() => {
      if (this.watched.get(id) === watched) this.drop(id, watched);
    });
    return watched;
  }

  private forget(ids: readonly string[], remove: (watched: Watched) => void): void {
    for (const id of ids) {
      const watched = this.watched.get(id);
      if (!watched) continue;
      remove(watched);
      if (watched.nowPlaying.size === 0 && watched.updated.size === 0) this.drop(id, watched);
    }
  }

  private drop(id: string, watched: Watched): void {
    clearTimeout(watched.timer);
    this.watched.delete(id);
  }

  /** The live TV service changed: the channel it names, or every watched one when it names none. */
  private changed(change: Change | undefined): void {
    // A new channel is no one's yet.
    if (this.closed || change?.operationId === 'adminCreateChannel') return;
    const id = change && CHANNEL_CHANGES.has(change.operationId) ? change.params.id : undefined;
    for (const each of id !== undefined ? [id] : [...this.watched.keys()]) this.refresh(each, 'change');
  }

  private refresh(id: string, reason: 'boundary' | 'change'): void {
    const watched = this.watched.get(id);
    if (!watched) return;
    if (watched.reading) {
      // A read is on its way (the first, or another): it may have read what was before. One more after it.
      watched.again = watched.again === 'change' ? 'change' : reason;
      return;
    }
    clearTimeout(watched.timer);
    watched.timer = undefined;
    watched.again = undefined;
    watched.reading = true;
    this.reads.load(id).then(
      (snapshot) => {
        watched.reading = false;
        if (this.watched.get(id) !== watched) return;
        watched.retryMs = FIRST_RETRY_MS;
        this.apply(id, watched, snapshot, reason);
        this.readAgain(id, watched);
      },
      (error: unknown) => {
        watched.reading = false;
        if (this.watched.get(id) !== watched) return;
        this.options.logger.warn({ err: error, channelId: id }, 'a live channel could not be read: tried again');
        // The retry reads whatever changed meanwhile too.
        this.retry(id, watched, watched.again === 'change' ? 'change' : reason);
        watched.again = undefined;
      },
    );
  }

  /** What changed while a read was on its way is read now. */
  private readAgain(id: string, watched: Watched): void {
    const again = watched.again;
    if (again === undefined || this.watched.get(id) !== watched) return;
    watched.again = undefined;
    this.refresh(id, again);
  }

  private retry(id: string, watched: Watched, reason: 'boundary' | 'change'): void {
    clearTimeout(watched.timer);
    watched.timer = setTimeout(() => this.refresh(id, reason), watched.retryMs).unref();
    watched.retryMs = Math.min(watched.retryMs * 2, MAX_RETRY_MS);
  }

  /** A read's outcome: emitted to whoever it concerns (what changed only), and the next boundary timed. */
  private apply(id: string, watched: Watched, snapshot: Snapshot | null, reason: 'first' | 'boundary' | 'change'): void {
    if (snapshot === null) {
      // Deleted: channelUpdated completes; nowPlaying has nothing more to say of it.
      for (const listener of watched.updated) listener.end();
      this.drop(id, watched);
      return;
    }
    const before = watched.snapshot;
    watched.snapshot = snapshot;
    if (before) {
      if (before.channelDigest !== snapshot.channelDigest) for (const listener of watched.updated) listener.send(snapshot.channel);
      if (before.channelDigest !== snapshot.channelDigest || before.programDigest !== snapshot.programDigest) {
        for (const listener of watched.nowPlaying) listener.send({ channel: snapshot.channel, program: snapshot.program });
      }
    }
    const endsAt = snapshot.program ? Date.parse(snapshot.program.end) : Number.NaN;
    const untilEnd = endsAt - this.now();
    // Still on air past its end (the read was early, or answered from a cache): read again shortly.
    if (Number.isNaN(endsAt) || (untilEnd <= 0 && reason === 'boundary')) {
      this.retry(id, watched, 'boundary');
      return;
    }
    watched.timer = setTimeout(() => this.refresh(id, 'boundary'), Math.min(Math.max(untilEnd, 0) + BOUNDARY_MARGIN_MS, MAX_TIMER_MS)).unref();
  }

  /** One read for every channel asked in the same turn: their records and their programmes on air. */
  private async read(ids: readonly string[]): Promise<(Snapshot | null)[]> {
    if (this.closed) throw new Error('the gateway is shutting down');
    const context = this.options.context();
    const [channels, playing] = await Promise.all([
      callSource<ChannelBatch>(context, 'channelsByIds', { ids }, { ids: 'id' }),
      callSource<NowPlayingBatch>(context, 'nowPlaying', { channelIds: ids }, { channelIds: 'channelIds' }),
    ]);
    return ids.map((id) => {
      const channel = channels.items.find((item) => item.id === id);
      if (!channel) return null;
      const program = playing.items.find((item) => item.channelId === id)?.program ?? null;
      return { channel: withOnAir(channel, program), program, channelDigest: digestOf(channel), programDigest: digestOf(program) };
    });
  }
}

/** A request id for the feed's own reads, as the upstream's logs show them. */
export const liveRequestId = (): string => `live-${randomUUID()}`;

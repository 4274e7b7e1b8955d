import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import { UPSTREAM_NAMES, type UpstreamName } from '../../../shared/upstreams.js';
import type { Logger } from '../observability/logger.js';
import type { GatewayMetrics } from '../observability/metrics.js';
import { KEY_PREFIX } from './keys.js';
import type { SharedRedis } from './redis.js';

/**
 * Each upstream's generation, and the epoch they count in (Redis's data: a Redis that lost it starts a
 * new epoch, and generations count from 0 again): a cached answer made at another is outdated.
 */
export interface Generations {
  readonly epoch: string;
  readonly upstreams: Readonly<Record<UpstreamName, number>>;
}

/** What a cached answer carries: the epoch and the generations of the upstreams it was made of. */
export interface Stamp {
  readonly epoch: string;
  readonly upstreams: Readonly<Partial<Record<UpstreamName, number>>>;
}

/**
 * What a change was, when the call that made it says: the spec operation and its path parameters (an
 * admin's `adminUpdateChannel` of `{ id: 'c1' }`). Listeners that follow a resource (live subscriptions)
 * read it; one without it may have changed anything of its upstream.
 */
export interface Change {
  readonly operationId: string;
  readonly params: Readonly<Record<string, string>>;
}

/** What a bus message may carry of a change: a forged one costs a listener a read, never more. */
const MAX_CHANGE_PARAMS = 4;
const MAX_CHANGE_TEXT = 128;

/** Whether `value` (read from a message anyone with access to Redis may publish) is a change. */
export function isChange(value: unknown): value is Change {
  if (typeof value !== 'object' || value === null) return false;
  const { operationId, params } = value as Record<string, unknown>;
  if (typeof operationId !== 'string' || !/^[A-Za-z][A-Za-z0-9_]{0,63}$/.test(operationId)) return false;
  if (typeof params !== 'object' || params === null || Array.isArray(params)) return false;
  const entries = Object.entries(params);
  return entries.length <= MAX_CHANGE_PARAMS && entries.every(([name, param]) => name.length <= MAX_CHANGE_TEXT && typeof param === 'string' && param.length <= MAX_CHANGE_TEXT);
}

/** What `/ready`'s details say of the bus: `local` without REDIS_URL. */
export type BusStatus = 'local' | 'listening' | 'deaf';

/**
 * How every replica learns that a change through any of them outdated an upstream's cached answers. A
 * change bumps the upstream's generation; cached answers carry the generations they were made at and are
 * used only while those are still today's, and the listeners drop what they hold of it.
 */
export interface Invalidations {
  /**
   * A change to `upstream` succeeded through this replica (or may have): its answers are outdated here at
   * once, and on every replica; `change` says what changed, when known.
   */
  publish(upstream: UpstreamName, change?: Change): void;
  /** Calls `listener` on every invalidation, this replica's and the others', with what changed when known. */
  onInvalidate(listener: InvalidationListener): void;
  /** Whether cached answers may be used: no replica's change can have gone unheard. */
  readonly trusted: boolean;
  /** Calls `listener` when trust is lost (what is held locally may be outdated) and when it is back. */
  onTrust(listener: (trusted: boolean) => void): void;
  /** Today's generations (a new object after each change: safe to keep as the snapshot of a lookup). */
  generations(): Generations;
  readonly status: BusStatus;
  close(): Promise<void>;
}

export type InvalidationListener = (upstream: UpstreamName, change: Change | undefined) => void;

const counted = (generation: (name: UpstreamName) => number) => Object.fromEntries(UPSTREAM_NAMES.map((name) => [name, generation(name)])) as Record<UpstreamName, number>;

/** The stamp of an answer made of `upstreams` at `generations`. */
export function stampOf(generations: Generations, upstreams: Iterable<UpstreamName>): Stamp {
  const stamped: Partial<Record<UpstreamName, number>> = {};
  for (const upstream of upstreams) stamped[upstream] = generations.upstreams[upstream];
  return { epoch: generations.epoch, upstreams: stamped };
}

/** Whether an answer stamped `stamp` is still today's: same epoch, and none of its upstreams changed since. */
export function isCurrent(stamp: Stamp, today: Generations): boolean {
  if (stamp.epoch !== today.epoch) return false;
  for (const [upstream, generation] of Object.entries(stamp.upstreams)) if (today.upstreams[upstream as UpstreamName] !== generation) return false;
  return true;
}

const isUpstream = (value: unknown): value is UpstreamName => typeof value === 'string' && (UPSTREAM_NAMES as readonly string[]).includes(value);

/**
 * Whether `value`, read from Redis (anyone with access may have written it, or a replica of another
 * version), is a stamp: an epoch, and a count for each of some upstreams.
 */
export function isStamp(value: unknown): value is Stamp {
  if (typeof value !== 'object' || value === null) return false;
  const { epoch, upstreams } = value as Record<string, unknown>;
  if (typeof epoch !== 'string' || typeof upstreams !== 'object' || upstreams === null || Array.isArray(upstreams)) return false;
  return Object.entries(upstreams).every(([name, generation]) => isUpstream(name) && Number.isSafeInteger(generation));
}

function bumped(generations: Generations, upstream: UpstreamName, generation: number): Generations {
  return generations.upstreams[upstream] === generation ? generations : { epoch: generations.epoch, upstreams: { ...generations.upstreams, [upstream]: generation } };
}

/** One process: a change is heard at once, by this process alone. */
export class LocalInvalidations implements Invalidations {
  private today: Generations = { epoch: 'local', upstreams: counted(() => 0) };
  private readonly listeners = new Set<InvalidationListener>();
  readonly trusted = true;
  readonly status = 'local';

  publish(upstream: UpstreamName, change?: Change): void {
    this.today = bumped(this.today, upstream, this.today.upstreams[upstream] + 1);
    for (const listener of this.listeners) listener(upstream, change);
  }

  onInvalidate(listener: InvalidationListener): void {
    this.listeners.add(listener);
  }

  onTrust(): void {}

  generations(): Generations {
    return this.today;
  }

  async close(): Promise<void> {}
}

const CHANNEL = `${KEY_PREFIX}invalidations`;

/** A count as Redis keeps one (HINCRBY's decimal integer), within what a number holds exactly; 0 for none; undefined for anything else. */
function countOf(value: string | undefined): number | undefined {
  if (value === undefined) return 0;
  const count = Number(value);
  return /^-?\d{1,16}$/.test(value) && Number.isSafeInteger(count) ? count : undefined;
}

/** Counts this close to the end of a safe integer are replaced with a new epoch before they pass it. */
const LAST_COUNT = Number.MAX_SAFE_INTEGER - 1_000_000;
const GENERATIONS_KEY = `${KEY_PREFIX}generations`;
/** The field of GENERATIONS_KEY that names the epoch: set by the first replica to find none. */
const EPOCH_FIELD = 'epoch';

/** A replica stops trusting cached answers within a second of losing the bus: a PING every 250 ms, unheard after 750. */
const HEARTBEAT_MS = 250;
const DEAF_AFTER_MS = 750;

interface Message {
  readonly upstream: UpstreamName;
  readonly generation: number;
  readonly at: number;
  readonly replica: string;
  readonly change?: Change;
}

/** A message of the bus, or undefined for anything else on the channel (nothing there is trusted blindly). */
function messageOf(raw: string): Message | undefined {
  if (raw.length > 2048) return undefined;
  try {
    const parsed = JSON.parse(raw) as Record<string, unknown>;
    const { upstream, generation, at, replica, change } = parsed;
    // The generation is not used (it is read from Redis), only checked to be a number: a count Redis holds past a safe integer still tells of a change.
    if (!isUpstream(upstream) || typeof generation !== 'number' || typeof at !== 'number' || typeof replica !== 'string') return undefined;
    // A change that is not one is dropped, not the message: the upstream changed all the same.
    return { upstream, generation, at, replica, ...(isChange(change) ? { change } : {}) };
  } catch {
    return undefined;
  }
}

/**
 * The bus through Redis (REDIS_URL): a generation per upstream in one hash, bumped with HINCRBY, and a
 * Pub/Sub channel that tells every replica at once. A replica trusts cached answers only while it hears
 * the channel: its connection is ready, subscribed, answers a PING every HEARTBEAT_MS, and it
 * has read today's generations since it last (re)subscribed. When it stops hearing, it stops using cached
 * answers (its listeners drop what they hold) within a second, logs that once, and says so in /ready and
 * `gateway_cache_bus_listening`. A change it could not announce meanwhile is announced first when the bus
 * is back; then it reads the generations again and trusts again. Messages of its own are not applied twice;
 * another's is a sign that an upstream changed, whose generation is then read from Redis (never taken from
 * the message, which anyone with access to Redis can publish).
 */
export class RedisInvalidations implements Invalidations {
  /** Until the bus is first heard, nothing is trusted: the epoch matches no stamp. */
  private today: Generations = { epoch: '', upstreams: counted(() => 0) };
  private heard = false;
  private subscribed = false;
  private resyncing = false;
  private lastPong = 0;
  /**
   * Changes made here that are not yet announced (Redis was away), each upstream's by the number of its
   * latest: an announcement takes its upstream off only if no change was made after the one it announces.
   */
  private readonly unannounced = new Map<UpstreamName, number>();
  private changesMade = 0;
  /** The read of each upstream's generation that is awaited (after a message): only the latest one's answer is applied. */
  private readonly reads = new Map<UpstreamName, number>();
  private readsMade = 0;
  private readonly listeners = new Set<InvalidationListener>();
  private readonly trustListeners = new Set<(trusted: boolean) => void>();
  private readonly replica = randomUUID();
  private readonly subscriber: Redis;
  private readonly heartbeat: NodeJS.Timeout;
  private closed = false;

  constructor(
    private readonly redis: SharedRedis,
    private readonly observers: { readonly logger: Logger; readonly metrics: GatewayMetrics },
  ) {
    this.subscriber = redis.subscriber();
    this.subscriber.on('ready', () => void this.resync());
    this.subscriber.on('close', () => this.lose('the bus connection closed'));
    this.subscriber.on('message', (channel: string, raw: string) => channel === CHANNEL && this.received(raw));
    redis.onChange((connection, up) => connection === 'commands' && up && void this.resync());
    this.heartbeat = setInterval(() => this.beat(), HEARTBEAT_MS);
    this.heartbeat.unref();
  }

  get trusted(): boolean {
    return this.heard;
  }

  get status(): BusStatus {
    return this.heard ? 'listening' : 'deaf';
  }

  generations(): Generations {
    return this.today;
  }

  onInvalidate(listener: InvalidationListener): void {
    this.listeners.add(listener);
  }

  onTrust(listener: (trusted: boolean) => void): void {
    this.trustListeners.add(listener);
  }

  publish(upstream: UpstreamName, change?: Change): void {
    // Outdated here at once: unknown (NaN matches no stamp) until Redis counts the change. Not a count of
    // this replica's own (the one after today's): another replica's change may take that number in Redis,
    // and answers made before it would be stamped as after. A read of the generation asked before this
    // change would answer a count without it: its answer is not applied.
    this.reads.delete(upstream);
    this.today = bumped(this.today, upstream, Number.NaN);
    for (const listener of this.listeners) listener(upstream, change);
    const number = ++this.changesMade;
    this.unannounced.set(upstream, number);
    void this.announce(upstream, number, change).catch(() => this.lose('a change could not be announced'));
  }

  /**
   * Bumps `upstream`'s generation in Redis and tells every replica (with what changed, when known); then
   * the change numbered `number` is announced. One announced late, after an outage, says only its upstream.
   */
  private async announce(upstream: UpstreamName, number: number, change?: Change): Promise<void> {
    const commands = this.redis.commands;
    const [counted, epoch] = (await this.redis.answer('bus', () => commands.multi().hincrby(GENERATIONS_KEY, upstream, 1).hget(GENERATIONS_KEY, EPOCH_FIELD).exec())) ?? [];
    if (!counted || counted[0] || !epoch || epoch[0]) throw counted?.[0] ?? epoch?.[0] ?? new Error('the change was not counted');
    const generation = Number(counted[1]);
    // Counted in today's epoch: Redis's count, unless a message came meanwhile (the read it asked for,
    // made after this increment, says more). In another (Redis lost the generations, and counts start
    // over), counts that were already used may come back: nothing held is current any more.
    const today = epoch[1] === this.today.epoch && Number.isSafeInteger(generation);
    if (today && !this.reads.has(upstream)) this.today = bumped(this.today, upstream, generation);
    const message: Message = { upstream, generation, at: Date.now(), replica: this.replica, ...(change ? { change } : {}) };
    await this.redis.answer('bus', () => commands.publish(CHANNEL, JSON.stringify(message)));
    if (this.unannounced.get(upstream) === number) this.unannounced.delete(upstream);
    this.observers.metrics.observeBusMessage('published');
    if (!today) this.lose('the generations in Redis are not those this replica counts in (lost, or of another epoch)');
  }

  private received(raw: string): void {
    const message = messageOf(raw);
    if (!message) return;
    this.lastPong = Date.now();
    if (message.replica === this.replica) return;
    this.observers.metrics.observeBusMessage('received', (Date.now() - message.at) / 1000);
    this.reread(message.upstream);
    for (const listener of this.listeners) listener(message.upstream, message.change);
  }

  /**
   * After a message: the upstream changed. Anyone who can publish on the channel can write a message, so
   * the generation it carries is not taken (a forged one far ahead would freeze this replica's count, and
   * answers stored before later changes would stay current): Redis's own count is read instead. Until it
   * is, the upstream's generation is unknown (NaN matches no stamp): nothing of it is used or stored. The
   * epoch is read with it: generations Redis lost count from 0 again, so an epoch that is not today's
   * means reading everything again (resync), as after an outage.
   */
  private reread(upstream: UpstreamName): void {
    this.today = bumped(this.today, upstream, Number.NaN);
    const read = ++this.readsMade;
    this.reads.set(upstream, read);
    const stored = this.redis.answer('bus', () => this.redis.commands.hmget(GENERATIONS_KEY, EPOCH_FIELD, upstream));
    stored.then(
      ([epoch, value]) => {
        if (this.reads.get(upstream) !== read) return;
        this.reads.delete(upstream);
        const generation = countOf(value ?? undefined);
        // Another epoch: Redis lost the generations, and a count may come back. Everything is read again.
        if (epoch !== this.today.epoch) this.lose('the generations in Redis are not those this replica counts in (lost, or of another epoch)');
        else if (generation !== undefined) this.today = bumped(this.today, upstream, generation);
        else this.lose(`the generation of ${upstream} in Redis is not a count`);
      },
      () => {
        if (this.reads.get(upstream) !== read) return;
        this.reads.delete(upstream);
        // Unknown until the bus is heard again and every generation is read.
        this.lose(`the generation of ${upstream} could not be read`);
      },
    );
  }

  /** After (re)connecting: subscribe, announce what could not be, read today's generations, then trust. */
  private async resync(): Promise<void> {
    if (this.resyncing || this.heard || this.closed || this.subscriber.status !== 'ready' || !this.redis.up) return;
    this.resyncing = true;
    try {
      if (!this.subscribed) {
        await this.redis.answer('bus', () => this.subscriber.subscribe(CHANNEL));
        this.subscribed = true;
      }
      await this.repair();
      for (const [upstream, change] of [...this.unannounced]) await this.announce(upstream, change);
      await this.redis.answer('bus', () => this.redis.commands.hsetnx(GENERATIONS_KEY, EPOCH_FIELD, randomUUID()));
      const stored = await this.redis.answer('bus', () => this.redis.commands.hgetall(GENERATIONS_KEY));
      if (UPSTREAM_NAMES.some((name) => countOf(stored[name]) === undefined)) throw new Error('a generation in Redis is not a count');
      const epoch = stored[EPOCH_FIELD] ?? '';
      // Counts known here come from Redis alone: one that went down in the same epoch (a failover to a
      // Redis replica that lagged, a restore) would come back for answers made before a change.
      if (epoch === this.today.epoch && UPSTREAM_NAMES.some((name) => (countOf(stored[name]) ?? 0) < this.today.upstreams[name])) {
        await this.newEpoch('generations in Redis went back');
        return;
      }
      // The bus answers before it is trusted: a subscription that went silent is not taken for heard.
      await this.redis.answer('bus', () => this.subscriber.ping());
      // Redis's generations are today's: a Redis that lost its data has a new epoch, and none of its
      // entries. An upstream whose message arrived meanwhile stays unknown until its own read answers.
      this.today = { epoch, upstreams: counted((name) => (this.reads.has(name) ? Number.NaN : (countOf(stored[name]) ?? 0))) };
      this.lastPong = Date.now();
      this.trust(true);
    } catch {
      // Tried again at the next heartbeat.
    } finally {
      this.resyncing = false;
    }
  }

  /**
   * Generations in Redis that are not counts (written by hand, or by anyone with access to it; or a
   * count at the end of what HINCRBY and a safe integer hold) would make every change unannounceable:
   * the others would never hear it, and this replica never trust again. They are no one's: a new epoch
   * replaces them (nothing stamped before it is used), and every replica follows at its next read.
   */
  private async repair(): Promise<void> {
    const stored = await this.redis.answer('bus', () => this.redis.commands.hgetall(GENERATIONS_KEY));
    const broken = UPSTREAM_NAMES.filter((name) => countOf(stored[name]) === undefined || Math.abs(countOf(stored[name]) ?? 0) >= LAST_COUNT);
    if (broken.length === 0) return;
    await this.newEpoch(`generations in Redis that are not counts (${broken.join(', ')})`);
  }

  /** Replaces the generations with a new epoch: nothing stamped before it is used, and every replica follows at its next read. */
  private async newEpoch(why: string): Promise<void> {
    this.observers.logger.warn({ reason: why }, 'a new epoch of generations replaces those in Redis');
    await this.redis.answer('bus', () => this.redis.commands.multi().del(GENERATIONS_KEY).hset(GENERATIONS_KEY, EPOCH_FIELD, randomUUID()).exec());
  }

  private beat(): void {
    // Judged after this turn's I/O is read (setImmediate runs after the poll phase): when this process's
    // own loop was busy, the PONG may be waiting unread, and a busy replica is not a deaf one.
    setImmediate(() => {
      if (this.closed) return;
      if (this.heard && Date.now() - this.lastPong > DEAF_AFTER_MS) {
        this.lose(`no answer on the bus connection for ${DEAF_AFTER_MS} ms`);
        // A connection that looks ready and answers nothing (half open, dropped by a NAT) is made again,
        // and with it the subscription.
        if (this.subscriber.status === 'ready') this.subscriber.disconnect(true);
        return;
      }
      if (!this.heard) {
        void this.resync();
        return;
      }
      if (this.subscriber.status === 'ready') {
        this.subscriber.ping().then(
          () => (this.lastPong = Date.now()),
          () => undefined,
        );
      }
    });
  }

  private lose(reason: string): void {
    // A closed connection forgets its subscription: it is made again before the bus is trusted.
    if (this.subscriber.status !== 'ready') this.subscribed = false;
    if (!this.heard || this.closed) return;
    this.observers.logger.warn({ reason }, 'invalidation bus not heard: cached answers are not used until it is heard again');
    this.trust(false);
  }

  private trust(trusted: boolean): void {
    if (this.heard === trusted) return;
    this.heard = trusted;
    this.observers.metrics.setBusListening(trusted);
    if (trusted) this.observers.logger.info('invalidation bus heard: cached answers are used again');
    for (const listener of this.trustListeners) listener(trusted);
  }

  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.heartbeat);
  }
}

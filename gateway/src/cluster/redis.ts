import { Redis } from 'ioredis';
import type { Logger } from '../observability/logger.js';
import type { GatewayMetrics, RedisUse } from '../observability/metrics.js';

/** REDIS_URL (rediss:// for TLS), REDIS_PASSWORD (wins over one in the URL), REDIS_COMMAND_TIMEOUT_MS. */
export interface RedisSettings {
  readonly url: string;
  readonly password?: string;
  /** The longest a request waits for any Redis answer before it goes on without. */
  readonly commandTimeoutMs: number;
}

/** The gateway's connections: one for every command, one for the bus (a subscribed connection takes no other). */
export type RedisConnection = 'commands' | 'bus';

/** Reconnection is tried this often at most: a Redis that is back is used again within about a second. */
const MAX_RECONNECT_DELAY_MS = 1000;

/** Redis did not answer in time (the connection may look fine: a frozen server). */
class RedisTimeoutError extends Error {
  override readonly name = 'RedisTimeoutError';
}

/** Commands written but not yet sent past which a command that need not be waited for is not sent. */
const MAX_UNSENT_BYTES = 4 * 1024 * 1024;

/** How often a frozen Redis is asked for a PING. */
const PROBE_EVERY_MS = 250;

/**
 * The command's answer, or a failure once `ms` have passed without one. When this process's own event
 * loop was busy, the timer fires late and the answer may be waiting, unread, in the socket: timers run
 * before I/O is read in each turn of the loop. So I/O gets one turn first (setImmediate runs after the
 * poll phase), and only a Redis that really has not answered counts as not answering.
 */
function answeredWithin<T>(command: Promise<T>, ms: number): Promise<T> {
  return new Promise((resolve, reject) => {
    let pending = true;
    const settle = (then: () => void) => {
      if (!pending) return;
      pending = false;
      clearTimeout(timer);
      then();
    };
    const timer = setTimeout(() => setImmediate(() => settle(() => reject(new RedisTimeoutError(`Redis did not answer within ${ms} ms`)))), ms);
    command.then(
      (value) => settle(() => resolve(value)),
      (error: unknown) => settle(() => reject(error as Error)),
    );
  });
}

const ignore = () => undefined;

/**
 * The one owner of the gateway's Redis connections (REDIS_URL): every feature that shares state across
 * replicas — rate limits, the caches, persisted queries, the invalidation bus — uses these, with one
 * configuration, one health signal (`gateway_redis_up`, `/ready`'s details) and one outage story: a
 * command is never queued while Redis is away and never waits longer than REDIS_COMMAND_TIMEOUT_MS, every
 * feature then goes on without Redis (fail open), the log says once that Redis went away and once that it
 * is back, and reconnection is automatic. No error of a connection can reach the process as an exception.
 */
export class SharedRedis {
  /** The connection for every command (not the bus's subscription). */
  readonly commands: Redis;
  private readonly connections = new Map<RedisConnection, Redis>();
  private readonly ready = new Set<RedisConnection>();
  /** Whether the outage was logged: once per outage, not once per connection or per failed command. */
  private outage = false;
  private readonly guarded = new WeakSet<object>();
  /** Closing: a connection that closes now is no outage. */
  private closing = false;
  /** A command timed out: none is sent until Redis answers a PING. */
  private frozen = false;
  private probe: NodeJS.Timeout | undefined;
  private readonly listeners = new Set<(connection: RedisConnection, up: boolean) => void>();

  constructor(
    readonly settings: RedisSettings,
    private readonly observers: { readonly logger: Logger; readonly metrics: GatewayMetrics },
  ) {
    this.commands = this.open('commands');
  }

  /** The bus's connection, opened on first use. */
  subscriber(): Redis {
    return this.connections.get('bus') ?? this.open('bus');
  }

  /** Whether the command connection is ready now, and Redis answered it lately. */
  get up(): boolean {
    return this.ready.has('commands') && !this.frozen;
  }

  /** Whether a command that need not be waited for may be sent: not while a frozen Redis lets them pile up unsent. */
  get writable(): boolean {
    return this.up && (this.commands.stream?.writableLength ?? 0) < MAX_UNSENT_BYTES;
  }

  /** What `/ready`'s details say. */
  get status(): Readonly<Record<RedisConnection, 'up' | 'down'>> {
    return { commands: this.up ? 'up' : 'down', bus: this.ready.has('bus') ? 'up' : 'down' };
  }

  /** Calls `listener` whenever a connection becomes ready or stops being so. */
  onChange(listener: (connection: RedisConnection, up: boolean) => void): void {
    this.listeners.add(listener);
  }

  /**
   * The answer of the command `send` sends, within REDIS_COMMAND_TIMEOUT_MS; a failure is counted under
   * `use` and rethrown. A connection can look ready and not answer (a frozen server): after a command
   * timed out, none is sent — each fails at once — until Redis answers a PING again, so a request waits
   * for Redis at most once, and nothing piles up unsent meanwhile.
   */
  async answer<T>(use: RedisUse, send: () => Promise<T>): Promise<T> {
    try {
      if (this.frozen) throw new Error('Redis did not answer lately: not asked until it answers a PING');
      return await answeredWithin(send(), this.settings.commandTimeoutMs);
    } catch (error) {
      this.observers.metrics.redisFailed(use);
      if (error instanceof RedisTimeoutError) this.freeze();
      throw error;
    }
  }

  /** A command timed out: every other fails at once while a PING is tried every so often; one unanswered too is an outage. */
  private freeze(): void {
    if (this.frozen || this.closing) return;
    this.frozen = true;
    this.observers.metrics.setRedisUp('commands', false);
    for (const listener of this.listeners) listener('commands', false);
    const probe = () => {
      answeredWithin(this.commands.ping(), this.settings.commandTimeoutMs).then(
        () => {
          this.frozen = false;
          this.observers.metrics.setRedisUp('commands', this.ready.has('commands'));
          for (const listener of this.listeners) listener('commands', this.ready.has('commands'));
          this.available();
        },
        (error: unknown) => {
          // One slow answer (a long script, a pause) is not an outage; a PING unanswered as well is.
          this.unavailable(error as Error);
          if (!this.closing) this.probe = setTimeout(probe, PROBE_EVERY_MS);
        },
      );
    };
    probe();
  }

  private open(name: RedisConnection): Redis {
    const redis = new Redis(this.settings.url, {
      // A command while Redis is away fails at once (the feature goes on without), never waits in a queue.
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      // A backstop well past the per-request wait: a command Redis never answers leaves ioredis's queue.
      commandTimeout: Math.max(2000, this.settings.commandTimeoutMs * 4),
      connectTimeout: 1000,
      retryStrategy: (attempt) => Math.min(attempt * 100, MAX_RECONNECT_DELAY_MS),
      // The commands of one turn of the event loop (many requests' lookups at once) go in one write.
      enableAutoPipelining: true,
      ...(this.settings.password !== undefined ? { password: this.settings.password } : {}),
    });
    this.connections.set(name, redis);
    this.observers.metrics.setRedisUp(name, false);
    // ioredis listens for its socket's first error only (redis/ioredis#961): a second one, such as a TLS
    // alert arriving as the socket closes, would be an uncaught exception. ioredis re-emits that first
    // error here, at once, so each socket gets a listener of its own before it can have a second.
    const guard = () => {
      const stream = redis.stream as object | undefined;
      if (!stream || this.guarded.has(stream)) return;
      this.guarded.add(stream);
      redis.stream.on('error', ignore);
    };
    redis.on('connect', guard);
    redis.on('error', (error: Error) => {
      guard();
      this.changed(name, false, error);
    });
    redis.on('close', () => this.changed(name, false));
    redis.on('ready', () => this.changed(name, true));
    return redis;
  }

  private changed(name: RedisConnection, up: boolean, error?: Error): void {
    if (this.closing) return;
    if (up !== this.ready.has(name)) {
      if (up) this.ready.add(name);
      else this.ready.delete(name);
      this.observers.metrics.setRedisUp(name, up);
      for (const listener of this.listeners) listener(name, up);
    }
    if (up) this.available();
    else this.unavailable(error, name);
  }

  /** Logged once an outage, from the first failure (connecting included), not once a connection, a command or a retry. */
  private unavailable(error: Error | undefined, connection?: RedisConnection): void {
    if (this.outage || this.closing) return;
    this.outage = true;
    // The URL may hold a password: the log says what failed, never where.
    this.observers.logger.warn({ ...(connection ? { connection } : {}), err: error?.message ?? 'connection closed' }, 'Redis unavailable: caches and persisted queries go to the upstreams, rate limits let requests through, until it answers');
  }

  /** The outage is over once every connection is ready again (and, after a frozen server, a command was answered). */
  private available(): void {
    if (!this.outage || this.frozen || ![...this.connections.keys()].every((connection) => this.ready.has(connection))) return;
    this.outage = false;
    this.observers.logger.info('Redis answers again: shared state resumes');
  }

  async close(): Promise<void> {
    this.closing = true;
    clearTimeout(this.probe);
    for (const redis of this.connections.values()) {
      const stream = redis.stream as { on?: (event: string, listener: () => void) => void } | undefined;
      stream?.on?.('error', ignore);
      redis.disconnect();
    }
    this.connections.clear();
  }
}

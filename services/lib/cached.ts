/** How old a kept read may be before it is read again: a change another process made shows within that. */
export const READ_AGAIN_MS = 1000;

/**
 * What a service reads often and changes seldom (a catalogue, a user's rights), kept in memory: read
 * from the database again once `ttlMs` old, so that a change another process made (a replica, an
 * operator) shows within that, and at once after this process made one (`invalidate`, after the write
 * committed). Concurrent readers share one read; a read that fails is not kept.
 */
export class Cached<T> {
  private value: Promise<T> | undefined;
  private readAt = 0;

  constructor(
    private readonly read: () => Promise<T>,
    private readonly ttlMs: number,
  ) {}

  get(): Promise<T> {
    if (this.value === undefined || Date.now() - this.readAt >= this.ttlMs) {
      const value = this.read();
      this.value = value;
      this.readAt = Date.now();
      value.catch(() => {
        if (this.value === value) this.value = undefined;
      });
    }
    return this.value;
  }

  invalidate(): void {
    this.value = undefined;
  }
}

/** `Cached` values by key, at most `max` of them: past that, the least recently read go first. */
export class CachedByKey<T> {
  private readonly entries = new Map<string, Cached<T>>();

  constructor(
    private readonly read: (key: string) => Promise<T>,
    private readonly ttlMs: number,
    private readonly max: number,
  ) {}

  get(key: string): Promise<T> {
    let entry = this.entries.get(key);
    if (entry) {
      // Read again: it moves to the end, away from eviction.
      this.entries.delete(key);
    } else {
      entry = new Cached(() => this.read(key), this.ttlMs);
      if (this.entries.size >= this.max) this.entries.delete(this.entries.keys().next().value as string);
    }
    this.entries.set(key, entry);
    return entry.get();
  }

  invalidate(key: string): void {
    this.entries.delete(key);
  }
}

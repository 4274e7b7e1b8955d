import { foundOr404 } from './errors.js';

/** Entries the admins edit by id (movies, channels): new ones get `<prefix><n>` after the last demo one. */
export class Catalogue<Entry extends { id: string }> {
  private readonly entries: Map<string, Entry>;
  private next: number;

  constructor(
    demo: readonly Entry[],
    private readonly prefix: string,
    /** What an entry is called in a 404 ("Movie"). */
    private readonly what: string,
  ) {
    this.entries = new Map(demo.map((entry) => [entry.id, entry]));
    this.next = demo.length + 1;
  }

  values(): Entry[] {
    return [...this.entries.values()];
  }

  has(id: string): boolean {
    return this.entries.has(id);
  }

  /** The asked entries that exist, each once, in the order asked. */
  many(ids: readonly string[]): Entry[] {
    return [...new Set(ids)].flatMap((id) => this.entries.get(id) ?? []);
  }

  /** The entry, or a 404. */
  get(id: string): Entry {
    return foundOr404(this.entries, id, this.what);
  }

  add(input: Omit<Entry, 'id'>): Entry {
    const entry = { id: `${this.prefix}${this.next++}`, ...input } as Entry;
    this.entries.set(entry.id, entry);
    return entry;
  }

  /** Replaces an entry's details (404 when there is none). */
  replace(id: string, input: Omit<Entry, 'id'>): Entry {
    const entry = { ...input, id: this.get(id).id } as Entry;
    this.entries.set(entry.id, entry);
    return entry;
  }

  remove(id: string): void {
    this.entries.delete(this.get(id).id);
  }
}

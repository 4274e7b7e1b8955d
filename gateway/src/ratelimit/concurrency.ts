/**
 * How many of something each client may have in flight at once (streamed uploads, password checks),
 * by client key. Only clients with something in flight have an entry, so the map never holds more
 * entries than there are calls in flight.
 */
export class ConcurrencyGate {
  private readonly inFlight = new Map<string, number>();

  constructor(private readonly perClient: number) {}

  /** A release function when the client may start another one, else undefined. */
  enter(client: string): (() => void) | undefined {
    const count = this.inFlight.get(client) ?? 0;
    if (count >= this.perClient) return undefined;
    this.inFlight.set(client, count + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const left = (this.inFlight.get(client) ?? 1) - 1;
      if (left === 0) this.inFlight.delete(client);
      else this.inFlight.set(client, left);
    };
  }
}

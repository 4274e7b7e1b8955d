/**
 * An async iterator fed by a producer and pulled by one consumer, as the subscription transports pull
 * (graphql-sse, graphql-ws): `return()` ends it at once, a pull in progress included (an async generator
 * would wait for its next value first), and `onOver` runs once however it ends — returned by its
 * consumer, or ended by its producer and drained. At most `capacity` values wait; past that, `push`
 * fails the stream with `overflow()`. A few fields per stream: subscribers hold thousands of them.
 */
export class PullStream<T> implements AsyncIterableIterator<T> {
  private readonly waiting: T[] = [];
  private taker: { resolve(result: IteratorResult<T>): void; reject(error: unknown): void } | undefined;
  /** The producer waiting for its value to be taken (`put`). */
  private taken: ((accepted: boolean) => void) | undefined;
  private failure: { readonly error: unknown } | undefined;
  private finished = false;
  /** Nothing more will be produced. */
  ended = false;
  private overListeners: (() => void)[] | undefined;

  constructor(
    private readonly capacity: number,
    private readonly onOver: () => void,
    private readonly overflow: () => unknown = () => new Error('the stream overflowed'),
  ) {}

  /** Resolves (to undefined) once nothing more will be produced. */
  over(): Promise<undefined> {
    if (this.ended) return Promise.resolve(undefined);
    return new Promise((resolve) => (this.overListeners ??= []).push(() => resolve(undefined)));
  }

  /** Hands a value on without waiting; false when the stream is over (or overflowed by this one). */
  push(value: T): boolean {
    if (this.ended) return false;
    if (this.taker) {
      const { resolve } = this.taker;
      this.taker = undefined;
      resolve({ value, done: false });
      return true;
    }
    if (this.waiting.length >= this.capacity) {
      this.fail(this.overflow());
      return false;
    }
    this.waiting.push(value);
    return true;
  }

  /** Hands a value on; resolves once it is taken (true), or the stream ended first (false). */
  put(value: T): Promise<boolean> {
    if (!this.push(value)) return Promise.resolve(false);
    if (this.waiting.length === 0) return Promise.resolve(true);
    return new Promise((resolve) => (this.taken = resolve));
  }

  /** No more values after `last` (if any): the consumer gets what waits, then the end. */
  end(last?: T): void {
    if (this.ended) return;
    if (last !== undefined) this.waiting.push(last);
    this.close();
    this.settle();
  }

  /** Ends with `error`: the consumer's next pull rejects with it, what waited is dropped. */
  fail(error: unknown): void {
    if (this.ended) return;
    this.waiting.length = 0;
    this.failure = { error };
    this.close();
    this.settle();
  }

  next(): Promise<IteratorResult<T>> {
    if (this.waiting.length > 0) {
      const value = this.waiting.shift() as T;
      this.taken?.(true);
      this.taken = undefined;
      return Promise.resolve({ value, done: false });
    }
    if (this.ended) return this.last();
    return new Promise((resolve, reject) => (this.taker = { resolve, reject }));
  }

  return(): Promise<IteratorResult<T>> {
    this.waiting.length = 0;
    this.failure = undefined;
    this.close();
    this.settle();
    this.finish();
    return Promise.resolve({ value: undefined, done: true });
  }

  throw(): Promise<IteratorResult<T>> {
    return this.return();
  }

  [Symbol.asyncIterator](): AsyncIterableIterator<T> {
    return this;
  }

  private close(): void {
    if (this.ended) return;
    this.ended = true;
    this.taken?.(false);
    this.taken = undefined;
    for (const listener of this.overListeners ?? []) listener();
    this.overListeners = undefined;
  }

  /** A consumer waiting on an ended stream gets what waits, or its end. */
  private settle(): void {
    if (!this.taker) return;
    const taker = this.taker;
    this.taker = undefined;
    if (this.waiting.length > 0) taker.resolve({ value: this.waiting.shift() as T, done: false });
    else void this.last().then(taker.resolve, taker.reject);
  }

  private last(): Promise<IteratorResult<T>> {
    this.finish();
    const failure = this.failure;
    this.failure = undefined;
    return failure ? Promise.reject(failure.error) : Promise.resolve({ value: undefined, done: true });
  }

  private finish(): void {
    if (this.finished) return;
    this.finished = true;
    this.onOver();
  }
}

import { describe, expect, it } from 'vitest';
import { PullStream } from '../../gateway/src/graphql/pull-stream.js';

describe('PullStream', () => {
  it('ends a pull in progress at once when returned, and runs onOver once however often it ends', async () => {
    let over = 0;
    const stream = new PullStream<number>(2, () => over++);
    const pending = stream.next();
    await stream.return();
    expect(await pending).toEqual({ value: undefined, done: true });
    stream.end(1);
    await stream.return();
    expect(await stream.next()).toEqual({ value: undefined, done: true });
    expect(over).toBe(1);
  });

  it('holds values until they are pulled, delivers the last one, then ends', async () => {
    let over = 0;
    const stream = new PullStream<string>(2, () => over++);
    expect(stream.push('a')).toBe(true);
    stream.end('last');
    expect(stream.push('late')).toBe(false);
    expect(over).toBe(0);
    expect([await stream.next(), await stream.next(), await stream.next()]).toEqual([
      { value: 'a', done: false },
      { value: 'last', done: false },
      { value: undefined, done: true },
    ]);
    expect(over).toBe(1);
  });

  it('fails with the overflow error past its capacity, dropping what waited', async () => {
    const stream = new PullStream<number>(2, () => undefined, () => new Error('behind'));
    expect([stream.push(1), stream.push(2), stream.push(3)]).toEqual([true, true, false]);
    await expect(stream.next()).rejects.toThrow('behind');
    expect(await stream.next()).toEqual({ value: undefined, done: true });
  });

  it('lets a producer wait for its value to be taken, and tells it when the stream ended first', async () => {
    const stream = new PullStream<number>(1, () => undefined);
    const first = stream.put(1);
    const settled: boolean[] = [];
    void first.then((taken) => settled.push(taken));
    await Promise.resolve();
    expect(settled).toEqual([]);
    expect(await stream.next()).toEqual({ value: 1, done: false });
    expect(await first).toBe(true);
    const second = stream.put(2);
    await stream.return();
    expect(await second).toBe(false);
  });

  it('rejects a pull in progress when the producer fails, and resolves over()', async () => {
    const stream = new PullStream<number>(1, () => undefined);
    const pending = stream.next();
    const over = stream.over();
    stream.fail(new Error('upstream down'));
    await expect(pending).rejects.toThrow('upstream down');
    expect(await over).toBeUndefined();
  });
});

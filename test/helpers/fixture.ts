import { afterAll, afterEach, beforeAll, beforeEach } from 'vitest';

/**
 * Something a describe's tests use, started before them and closed after (`perTest`: around each test
 * instead, `reset` before each otherwise), read through a view: it exists only once its hook ran.
 */
export function useFixture<T extends object>(start: () => Promise<T>, close: (fixture: T) => Promise<void>, options: { readonly perTest?: boolean; readonly reset?: (fixture: T) => void } = {}): T {
  const holder = {} as { current: T };
  const open = async () => {
    holder.current = await start();
  };
  const shut = () => close(holder.current);
  if (options.perTest) {
    beforeEach(open);
    afterEach(shut);
  } else {
    beforeAll(open);
    afterAll(shut);
    const { reset } = options;
    if (reset) beforeEach(() => reset(holder.current));
  }
  return new Proxy({} as T, { get: (_target, key) => holder.current[key as keyof T] });
}

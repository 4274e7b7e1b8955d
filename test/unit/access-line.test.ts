/** The access line is written past pino's per-line work: it must still be exactly the line pino writes. */
import { Writable } from 'node:stream';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createLogger, trustedInfoWriter } from '../../gateway/src/observability/logger.js';

describe('the access line’s writer', () => {
  afterEach(() => vi.useRealTimers());

  const capture = () => {
    const raw: string[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _encoding, done) {
        raw.push(chunk.toString());
        done();
      },
    });
    return { raw, logger: createLogger({ level: 'info', destination: sink }) };
  };

  it('writes the very line pino writes for the same fields and message: level, time, bindings, fields without the undefined ones, message', () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    const { raw, logger } = capture();
    const fields = {
      requestId: 'r-1',
      traceId: undefined,
      method: 'GET',
      path: '/ondemand/"quoted"\\back\u00e9\u2028',
      status: 200,
      durationMs: 1.5,
      bytesOut: Number.NaN,
      user: 'ü',
      graphql: { operation: 'Shelf', type: 'query' },
      upstream: [{ service: 'ondemand', status: 'timeout', ms: 1.2, cache: undefined }],
      incomplete: undefined,
    };
    logger.info(fields, 'GET /ondemand 200 1.5 ms "and"');
    trustedInfoWriter(logger)(fields, 'GET /ondemand 200 1.5 ms "and"');
    expect(raw).toHaveLength(2);
    expect(raw[1]).toBe(raw[0]);
  });

  it('writes nothing once the logger leaves info lines out', () => {
    const { raw, logger } = capture();
    const write = trustedInfoWriter(logger);
    logger.level = 'warn';
    write({ requestId: 'r-2' }, 'GET / 200 1 ms');
    expect(raw).toEqual([]);
  });
});

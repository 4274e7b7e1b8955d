/** The pipeline's onClose phase: what each capability opened is closed, last opened first, whatever fails. */
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../gateway/src/config.js';
import { createLogger } from '../../gateway/src/observability/logger.js';
import { createPipeline, type GatewayPlugin } from '../../gateway/src/pipeline/pipeline.js';
import { createGateway } from '../../gateway/src/server.js';
import { TEST_SECRET } from '../helpers/tokens.js';

describe('closing the pipeline', () => {
  const closing = (log: string[], name: string, fail = false): GatewayPlugin => ({
    name,
    async onClose() {
      await Promise.resolve();
      log.push(name);
      if (fail) throw new Error(`${name} failed to close`);
    },
  });

  it('runs each plugin’s onClose once, in reverse order of the list, each after the one before', async () => {
    const log: string[] = [];
    const pipeline = createPipeline([closing(log, 'client'), { name: 'no-resources' }, closing(log, 'limiter'), closing(log, 'face')], () => undefined);
    await Promise.all([pipeline.close(), pipeline.close()]);
    await pipeline.close();
    expect(log).toEqual(['face', 'limiter', 'client']);
  });

  it('closes the others when one fails, then throws the first failure', async () => {
    const log: string[] = [];
    const pipeline = createPipeline([closing(log, 'client'), closing(log, 'limiter', true), closing(log, 'face', true)], () => undefined);
    await expect(pipeline.close()).rejects.toThrow('face failed to close');
    expect(log).toEqual(['face', 'limiter', 'client']);
  });
});

describe('the gateway as a list of capabilities', () => {
  it('answers /graphql through named steps, and closes what its capabilities opened through the pipeline', async () => {
    const gateway = await createGateway(loadConfig({ NODE_ENV: 'test', LOG_LEVEL: 'silent', JWT_SECRET_KEY: TEST_SECRET, RATE_LIMIT_PER_MINUTE: '10' }), createLogger({ level: 'silent' }));
    expect(gateway.graphql?.steps).toEqual(['websocket', 'explorer', 'read', 'trusted-documents', 'event-stream', 'response-cache', 'execution']);
    expect(gateway.pipeline.closers).toEqual(['graphql', 'upstream-client']);
    expect(gateway.client.closed).toBe(false);
    await gateway.pipeline.close();
    expect(gateway.client.closed).toBe(true);
  });
});

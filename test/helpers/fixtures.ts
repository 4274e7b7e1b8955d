import { afterAll, beforeAll, beforeEach } from 'vitest';
import { startReferenceServices, type ReferenceServices } from '../../services/registry.js';
import type { Logger } from '../../gateway/src/observability/logger.js';
import { startGateway, type RunningGateway } from './gateway.js';
import { startRecordingUpstreams, type RecordingUpstreams } from './recording-upstream.js';
import { TEST_SECRET } from './tokens.js';

export interface RecordingFixture {
  readonly upstreams: RecordingUpstreams;
  readonly gateway: RunningGateway;
}

/**
 * For the whole test file: six recording upstreams and a real gateway in front of them (HS256 with
 * TEST_SECRET, plus `env`; `logger` in place of the silent one). The recordings and behaviours are reset
 * before each test.
 */
export function useRecordingGateway(env: NodeJS.ProcessEnv = {}, options: { logger?: Logger } = {}): RecordingFixture {
  const fixture = {} as { upstreams: RecordingUpstreams; gateway: RunningGateway };
  beforeAll(async () => {
    fixture.upstreams = await startRecordingUpstreams();
    fixture.gateway = await startGateway(fixture.upstreams.urls, { JWT_SECRET_KEY: TEST_SECRET, ...env }, options);
  });
  afterAll(async () => {
    await fixture.gateway.close();
    await fixture.upstreams.close();
  });
  beforeEach(() => fixture.upstreams.reset());
  return fixture;
}

export interface ReferenceFixture {
  readonly stack: ReferenceServices;
  readonly gateway: RunningGateway;
}

/** For the whole test file: the six reference services on free ports and a real gateway in front. */
export function useReferenceGateway(env: NodeJS.ProcessEnv = {}): ReferenceFixture {
  const fixture = {} as { stack: ReferenceServices; gateway: RunningGateway };
  beforeAll(async () => {
    fixture.stack = await startReferenceServices({ anyPorts: true, env: {} });
    fixture.gateway = await startGateway(fixture.stack.urls, env);
  });
  afterAll(async () => {
    await fixture.gateway.close();
    await fixture.stack.close();
  });
  return fixture;
}

import { IN_MEMORY } from '../../services/lib/environment.js';
import { startReferenceServices, type ReferenceServices } from '../../services/registry.js';
import type { GatewayOptions } from '../../gateway/src/server.js';
import type { Logger } from '../../gateway/src/observability/logger.js';
import type { UpstreamUrls } from '../../shared/upstreams.js';
import { startCountingProxies, type CountingProxies } from './counting-proxy.js';
import { startGateway, type RunningGateway } from './gateway.js';
import { startRecordingUpstreams, type RecordingUpstreams } from './recording-upstream.js';
import { TEST_SECRET } from './tokens.js';
import { useFixture } from './fixture.js';

export interface StackOptions {
  /** `recording` (default): six recording servers that answer as told; `reference`: the six reference services. */
  readonly upstreams?: 'recording' | 'reference';
  /** With the reference services: a counting proxy in front of each, recording every call the gateway makes. */
  readonly counting?: boolean;
  /** How many gateways share the upstreams (default 1), or each one's own settings over `env`. */
  readonly gateways?: number | readonly NodeJS.ProcessEnv[];
  /**
   * The gateways' environment, over the test defaults (rate limits and breakers off, HS256 with
   * TEST_SECRET); a function is read when the stack starts (a Redis started before it, say).
   */
  readonly env?: NodeJS.ProcessEnv | (() => NodeJS.ProcessEnv);
  /** With the reference services: their settings over the test defaults (LIVETV_SLOT_SECONDS, say). */
  readonly serviceEnv?: NodeJS.ProcessEnv;
  /** In place of the silent logger. */
  readonly logger?: Logger;
  readonly gatewayOptions?: GatewayOptions;
  /** `useStack` only: a fresh stack for every test (counters, caches and buckets start empty), not one per describe. */
  readonly perTest?: boolean;
}

interface StackBase {
  /** The first gateway. */
  readonly gateway: RunningGateway;
  readonly gateways: readonly RunningGateway[];
  close(): Promise<void>;
}

export interface RecordingStack extends StackBase {
  readonly upstreams: RecordingUpstreams;
}

export interface ReferenceStack<Counting extends CountingProxies | undefined = CountingProxies | undefined> extends StackBase {
  readonly services: ReferenceServices;
  /** Present with `counting`. */
  readonly counting: Counting;
}

type StackOf<Options extends StackOptions> = Options['upstreams'] extends 'reference' ? ReferenceStack<Options['counting'] extends true ? CountingProxies : undefined> : RecordingStack;

async function startGateways(urls: UpstreamUrls, options: StackOptions): Promise<RunningGateway[]> {
  const own = typeof options.gateways === 'object' ? options.gateways : Array.from({ length: options.gateways ?? 1 }, () => ({}));
  const gatewayOptions = { ...options.gatewayOptions, ...(options.logger ? { logger: options.logger } : {}) };
  const shared = typeof options.env === 'function' ? options.env() : options.env;
  return Promise.all(own.map((env) => startGateway(urls, { JWT_SECRET_KEY: TEST_SECRET, ...shared, ...env }, gatewayOptions)));
}

function closing(gateways: readonly RunningGateway[], ...rest: { close(): Promise<void> }[]): () => Promise<void> {
  return async () => {
    await Promise.all(gateways.map((gateway) => gateway.close()));
    for (const part of rest) await part.close();
  };
}

/**
 * Upstreams on free ports and real in-process gateways in front of them, each on a free port (the
 * tests' one fixture): `startStack({ upstreams: 'reference', counting: true, gateways: 2, env })`.
 */
export async function startStack<const Options extends StackOptions>(options: Options): Promise<StackOf<Options>> {
  if (options.upstreams === 'reference') {
    const services = await startReferenceServices({ anyPorts: true, env: { LOG_LEVEL: 'silent', JWT_SECRET_KEY: TEST_SECRET, DATA_DIR: IN_MEMORY, ...options.serviceEnv } });
    const counting = options.counting ? await startCountingProxies(services.urls) : undefined;
    const gateways = await startGateways(counting?.urls ?? services.urls, options);
    const stack: ReferenceStack = { services, counting, gateway: gateways[0] as RunningGateway, gateways, close: closing(gateways, ...(counting ? [counting] : []), services) };
    return stack as StackOf<Options>;
  }
  const upstreams = await startRecordingUpstreams();
  const gateways = await startGateways(upstreams.urls, options);
  const stack: RecordingStack = { upstreams, gateway: gateways[0] as RunningGateway, gateways, close: closing(gateways, upstreams) };
  return stack as StackOf<Options>;
}

/**
 * `startStack` for the whole `describe` (or file), or for each test with `perTest`: started before, closed
 * after; with one stack per describe, the recordings, the upstreams' behaviours and the call counts are
 * reset before each test.
 */
export function useStack<const Options extends StackOptions>(options: Options): StackOf<Options> {
  return useFixture(() => startStack(options), (stack) => stack.close(), {
    perTest: options.perTest ?? false,
    reset: (stack: RecordingStack | ReferenceStack) => {
      if ('upstreams' in stack) stack.upstreams.reset();
      else stack.counting?.reset();
    },
  });
}

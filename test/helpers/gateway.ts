import { loadConfig } from '../../gateway/src/config.js';
import { createLogger } from '../../gateway/src/observability/logger.js';
import { createGateway, type Gateway, type GatewayOptions } from '../../gateway/src/server.js';
import { UPSTREAM_NAMES, UPSTREAMS, type UpstreamUrls } from '../../gateway/src/upstreams.js';

export interface RunningGateway {
  readonly url: string;
  readonly gateway: Gateway;
  close(): Promise<void>;
}

/**
 * The real gateway, in this process, on a free port, in front of the given upstreams. Rate limiting is
 * off unless `env` sets RATE_LIMIT_PER_MINUTE (suites send hundreds of requests from one address), and
 * so are the circuit breakers unless it sets UPSTREAM_BREAKER_FAILURES (suites make upstreams fail on purpose).
 */
export async function startGateway(upstreams: UpstreamUrls, env: NodeJS.ProcessEnv = {}, options: GatewayOptions = {}): Promise<RunningGateway> {
  const upstreamEnv = Object.fromEntries(UPSTREAM_NAMES.map((name) => [UPSTREAMS[name].envVar, upstreams[name]]));
  const config = loadConfig({ NODE_ENV: 'test', LOG_LEVEL: 'silent', RATE_LIMIT_PER_MINUTE: '0', UPSTREAM_BREAKER_FAILURES: '0', ...upstreamEnv, ...env });
  const gateway = await createGateway(config, createLogger(config.logLevel), options);
  const url = await gateway.listen(0);
  return { url, gateway, close: () => gateway.close(1000) };
}

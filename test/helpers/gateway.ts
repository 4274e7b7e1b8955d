import { Writable } from 'node:stream';
import { loadConfig } from '../../gateway/src/config.js';
import type { LogLevel } from '../../shared/settings.js';
import { createLogger, type Logger } from '../../gateway/src/observability/logger.js';
import { createGateway, type Gateway, type GatewayOptions } from '../../gateway/src/server.js';
import { upstreamEnvironment, type UpstreamUrls } from '../../shared/upstreams.js';

export interface RunningGateway {
  readonly url: string;
  readonly gateway: Gateway;
  close(): Promise<void>;
}

/**
 * The real gateway, in this process, on a free port, in front of the given upstreams. Rate limits are
 * off unless `env` sets RATE_LIMIT_PER_MINUTE, REGISTRATIONS_PER_HOUR or CREDENTIAL_CALLS_PER_CLIENT
 * (suites send hundreds of requests, logins among them, from one address), and so are the circuit breakers unless it sets UPSTREAM_BREAKER_FAILURES
 * (suites make upstreams fail on purpose). `logger` replaces the silent one.
 */
export async function startGateway(upstreams: UpstreamUrls, env: NodeJS.ProcessEnv = {}, options: GatewayOptions & { logger?: Logger } = {}): Promise<RunningGateway> {
  const config = loadConfig({ NODE_ENV: 'test', LOG_LEVEL: 'silent', RATE_LIMIT_PER_MINUTE: '0', REGISTRATIONS_PER_HOUR: '0', CREDENTIAL_CALLS_PER_CLIENT: '0', UPSTREAM_BREAKER_FAILURES: '0', ...upstreamEnvironment(upstreams), ...env });
  const gateway = await createGateway(config, options.logger ?? createLogger({ level: config.logLevel }), options);
  const url = await gateway.listen(0);
  return { url, gateway, close: () => gateway.close({ graceMs: 1000 }) };
}

export interface CapturedLog {
  readonly logger: Logger;
  /** Every line logged so far, parsed. */
  readonly lines: Record<string, unknown>[];
}

/** The gateway's own logger (its format and redaction) at `level`, its lines kept for the test to read. */
export function captureLog(level: LogLevel = 'info'): CapturedLog {
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString().split('\n')) if (line !== '') lines.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  return { logger: createLogger({ level, destination: sink }), lines };
}

import { Writable } from 'node:stream';
import { loadConfig } from '../../gateway/src/config.js';
import type { LogLevel } from '../../shared/settings.js';
import { createLogger, type Logger } from '../../gateway/src/observability/logger.js';
import { createGateway, type Gateway, type GatewayOptions } from '../../gateway/src/server.js';
import { UPSTREAM_NAMES, upstreamEnvironment, type UpstreamUrls } from '../../shared/upstreams.js';
import { useFixture } from './fixture.js';
import { TEST_SECRET } from './tokens.js';

export interface RunningGateway {
  readonly url: string;
  readonly gateway: Gateway;
  close(): Promise<void>;
}

/**
 * Upstreams for a gateway that must call none: in the unit tier, where any call fails the test
 * (test/unit/setup.ts), and the gateway's metrics say none was made.
 */
export const NO_UPSTREAMS = Object.fromEntries(UPSTREAM_NAMES.map((name) => [name, 'http://127.0.0.1:9'])) as UpstreamUrls;

/**
 * The real gateway, in this process, in front of the given upstreams, not listening: requests reach it
 * through `gateway.inject` (no socket). Rate limits are off unless `env` sets RATE_LIMIT_PER_MINUTE,
 * REGISTRATIONS_PER_HOUR or CREDENTIAL_CALLS_PER_CLIENT (suites send hundreds of requests, logins among
 * them, from one address), and so are the circuit breakers unless it sets UPSTREAM_BREAKER_FAILURES
 * (suites make upstreams fail on purpose). `logger` replaces the silent one.
 */
export async function createTestGateway(upstreams: UpstreamUrls, env: NodeJS.ProcessEnv = {}, options: GatewayOptions & { logger?: Logger } = {}): Promise<Gateway> {
  const config = loadConfig({ NODE_ENV: 'test', LOG_LEVEL: 'silent', RATE_LIMIT_PER_MINUTE: '0', REGISTRATIONS_PER_HOUR: '0', CREDENTIAL_CALLS_PER_CLIENT: '0', UPSTREAM_BREAKER_FAILURES: '0', ...upstreamEnvironment(upstreams), ...env });
  return createGateway(config, options.logger ?? createLogger({ level: config.logLevel }), options);
}

/**
 * `createTestGateway` for the whole describe, with NO_UPSTREAMS and HS256 with TEST_SECRET: the unit
 * tier's gateway. REST only unless `options` says `graphql: true`: a GraphQL answer needs an upstream,
 * and loading Mesh and Apollo costs each worker seconds.
 */
export function useInProcessGateway(env: NodeJS.ProcessEnv = {}, options: GatewayOptions = {}): Gateway {
  return useFixture(
    () => createTestGateway(NO_UPSTREAMS, { JWT_SECRET_KEY: TEST_SECRET, ...env }, { graphql: false, ...options }),
    (gateway) => gateway.close(),
  );
}

export interface InjectedAnswer {
  readonly status: number;
  readonly headers: Headers;
  /** The JSON body; {} when there is none. */
  readonly body: Record<string, unknown>;
}

/** A request dispatched in-process (no socket), with a bearer token when given, read as a client reads it. */
export async function injected(gateway: Gateway, method: string, path: string, token?: string): Promise<InjectedAnswer> {
  const response = await gateway.inject({ method: method as 'GET', url: path, headers: token ? { authorization: `Bearer ${token}` } : {} });
  const headers = new Headers(Object.entries(response.headers).map(([name, value]): [string, string] => [name, String(value)]));
  return { status: response.statusCode, headers, body: response.body === '' ? {} : (JSON.parse(response.body) as Record<string, unknown>) };
}

/** `createTestGateway`, listening on a free port (the http tier). */
export async function startGateway(upstreams: UpstreamUrls, env: NodeJS.ProcessEnv = {}, options: GatewayOptions & { logger?: Logger } = {}): Promise<RunningGateway> {
  const gateway = await createTestGateway(upstreams, env, options);
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

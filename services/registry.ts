import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pino, type Logger } from 'pino';
import { UPSTREAM_NAMES, servicePort, type UpstreamName, type UpstreamUrls } from '../shared/upstreams.js';
import { authService } from './auth.js';
import { livetvService } from './livetv.js';
import { ondemandService } from './ondemand.js';
import { rightsService } from './rights.js';
import { searchService } from './search.js';
import { usersService } from './users.js';
import { serviceEnvironment, type ServiceEnvironment } from './lib/environment.js';
import { createServiceServer, type ServiceDefinition } from './lib/service.js';

const SERVICES: Readonly<Record<UpstreamName, ServiceDefinition>> = {
  auth: authService,
  users: usersService,
  ondemand: ondemandService,
  livetv: livetvService,
  rights: rightsService,
  search: searchService,
};

export interface RunningService {
  readonly name: UpstreamName;
  readonly url: string;
  readonly server: Server;
  close(): Promise<void>;
}

function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeIdleConnections();
  });
}

/** A service's JSON log on stdout (pino), at LOG_LEVEL, its lines shaped like the gateway's: level names, ISO times. */
export function serviceLogger(name: UpstreamName, env: ServiceEnvironment): Logger {
  return pino({ base: { service: `${name}-service` }, level: env.logLevel, timestamp: pino.stdTimeFunctions.isoTime, formatters: { level: (label) => ({ level: label }) } });
}

/** Starts one reference service, fresh state; port 0 takes any free port. */
export async function startService(name: UpstreamName, env: ServiceEnvironment, host: string, port: number, logger: Logger = serviceLogger(name, env)): Promise<RunningService> {
  const server = await createServiceServer(SERVICES[name], env, logger);
  server.keepAliveTimeout = 65_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  const { port: bound } = server.address() as AddressInfo;
  return { name, url: `http://${host}:${bound}`, server, close: () => closeServer(server) };
}

export interface ReferenceServices {
  readonly urls: UpstreamUrls;
  /** The services' settings, read at each request: `changeEvents` may be set once the gateway listens. */
  readonly env: ServiceEnvironment;
  readonly services: Readonly<Record<UpstreamName, RunningService>>;
  close(): Promise<void>;
}

/**
 * Starts all six services in this process, each on its own port: on the configured block, or with
 * `anyPorts` on free ports (for tests), the services then being told where the others are.
 */
export async function startReferenceServices(options: { anyPorts?: boolean; env?: NodeJS.ProcessEnv } = {}): Promise<ReferenceServices> {
  const env = serviceEnvironment(options.env ?? process.env);
  const running = await Promise.all(UPSTREAM_NAMES.map((name) => startService(name, env, '127.0.0.1', options.anyPorts ? 0 : servicePort(name, env.basePort))));
  const services = {} as Record<UpstreamName, RunningService>;
  for (const service of running) {
    services[service.name] = service;
    env.urls[service.name] = service.url;
  }
  return {
    urls: env.urls,
    env,
    services,
    close: async () => {
      await Promise.all(running.map((service) => service.close()));
    },
  };
}

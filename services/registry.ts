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
import { openDatabases, writeDemoDatabase, type Databases, type ServiceSchema } from './lib/database.js';
import { serviceEnvironment, type ServiceEnvironment } from './lib/environment.js';
import { jsonLogger } from './lib/log.js';
import { createServiceServer, type ServiceDefinition } from './lib/service.js';

const SERVICES: Readonly<Record<UpstreamName, ServiceDefinition>> = {
  auth: authService,
  users: usersService,
  ondemand: ondemandService,
  livetv: livetvService,
  rights: rightsService,
  search: searchService,
};

/** Every service's schema: an in-memory database is made as a copy of one that has them all. */
const SCHEMAS = UPSTREAM_NAMES.flatMap((name) => {
  const { database } = SERVICES[name];
  return database ? [[name, database] as const] : [];
}) satisfies (readonly [UpstreamName, ServiceSchema])[];

/** Makes the build's demo database (dist/pglite/): every service's schema migrated and its demo data written. */
export function writeDemoTemplate(inputs: string): Promise<void> {
  return writeDemoDatabase(SCHEMAS, pino({ level: 'warn' }), inputs);
}

/** The databases of the services started with `env`, in this process (see openDatabases). */
export function databasesFor(env: ServiceEnvironment, logger: Logger): Databases {
  return openDatabases(env.database, logger, SCHEMAS);
}

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

/** A service's log. */
export const serviceLogger = (name: UpstreamName, env: ServiceEnvironment): Logger => jsonLogger(`${name}-service`, env.logLevel);

/**
 * Starts one reference service on its data (`databases`, or its own, closed with it); port 0 takes
 * any free port.
 */
export async function startService(name: UpstreamName, env: ServiceEnvironment, host: string, port: number, logger: Logger = serviceLogger(name, env), databases?: Databases): Promise<RunningService> {
  const own = databases ? undefined : databasesFor(env, logger);
  try {
    const server = await createServiceServer(SERVICES[name], env, logger, databases ?? own);
    server.keepAliveTimeout = 65_000;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => resolve());
    });
    const { port: bound } = server.address() as AddressInfo;
    return {
      name,
      url: `http://${host}:${bound}`,
      server,
      close: async () => {
        await closeServer(server);
        await own?.close();
      },
    };
  } catch (error) {
    await own?.close();
    throw error;
  }
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
  const databases = databasesFor(env, jsonLogger('reference-services', env.logLevel));
  const started = await Promise.allSettled(UPSTREAM_NAMES.map((name) => startService(name, env, '127.0.0.1', options.anyPorts ? 0 : servicePort(name, env.basePort), undefined, databases)));
  const running = started.flatMap((result) => (result.status === 'fulfilled' ? [result.value] : []));
  const failed = started.find((result) => result.status === 'rejected');
  if (failed) {
    await Promise.all(running.map((service) => service.close()));
    await databases.close();
    throw failed.reason;
  }
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
      await databases.close();
    },
  };
}

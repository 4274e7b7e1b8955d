import { loadTracingConfig, startTracing } from '../shared/tracing.js';
import { projectVersion } from '../shared/paths.js';
import { UPSTREAM_NAMES, UPSTREAMS, type UpstreamName, servicePort } from '../shared/upstreams.js';
import { serviceEnvironment } from './lib/environment.js';
import { serviceLogger, startService } from './registry.js';

/** Runs one reference service in this process: `node --import tsx services/main.ts <name>`. */
async function main(): Promise<void> {
  const name = process.argv[2] as UpstreamName | undefined;
  if (!name || !UPSTREAM_NAMES.includes(name)) {
    console.error(`usage: services/main.ts <${UPSTREAM_NAMES.join('|')}>`);
    process.exit(2);
  }
  const env = serviceEnvironment();
  const log = serviceLogger(name, env);
  // The launcher gives every service the same environment: the service's own name wins over OTEL_SERVICE_NAME.
  const tracing = await startTracing(loadTracingConfig(), { serviceName: `${name}-service`, serviceVersion: projectVersion(), fixedName: true, contextManager: true, warn: (message) => log.warn(`opentelemetry: ${message}`) });
  const service = await startService(name, env, process.env.HOST || '127.0.0.1', servicePort(name, env.basePort), log);
  log.info({ url: service.url }, `${UPSTREAMS[name].title} service listening`);
  const stop = () => {
    void service
      .close()
      .then(() => tracing?.shutdown())
      .then(() => process.exit(0));
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
  // Under `npm start` the launcher holds an IPC channel: when it dies, so does this service.
  process.once('disconnect', stop);
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : String(error));
  process.exit(1);
});

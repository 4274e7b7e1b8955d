// Only the configuration is imported up front: a bad variable is reported before anything heavy loads.
import { loadConfig, type GatewayConfig } from './config.js';
import { ConfigError } from '../../shared/settings.js';
import { projectVersion } from '../../shared/paths.js';

function configOrExit(): GatewayConfig {
  try {
    return loadConfig();
  } catch (error) {
    const message = error instanceof ConfigError ? error.message : 'could not read the configuration';
    process.stderr.write(`gateway: configuration error: ${message}\n`);
    process.exit(1);
  }
}

const config = configOrExit();
const [{ createLogger }, { createGateway }, { startTracing }] = await Promise.all([import('./observability/logger.js'), import('./server.js'), import('../../shared/tracing.js')]);
const logger = createLogger({ level: config.logLevel, format: config.logFormat });
if (config.jwt.usesDevelopmentSecret) logger.warn('JWT_SECRET_KEY is not set: using the development-only key');

const tracing = await startTracing(config.tracing, {
  serviceName: 'tv-gateway',
  serviceVersion: projectVersion(),
  warn: (message) => logger.warn({ component: 'opentelemetry' }, message),
});
const gateway = await createGateway(config, logger, tracing ? { tracing } : {});
try {
  const url = await gateway.listen();
  logger.info({ url, ...(gateway.adminUrl ? { adminUrl: gateway.adminUrl } : {}), upstreams: config.upstreams, nodeEnv: config.nodeEnv, tracing: config.tracing.enabled }, 'gateway listening');
} catch (error) {
  process.stderr.write(`gateway: cannot listen on ${config.host}:${config.port}: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
}
let stopping = false;
function shutdown(signal: string): void {
  if (stopping) return;
  stopping = true;
  logger.info({ signal }, 'shutting down');
  // Not ready for SHUTDOWN_DRAIN_MS while still serving, then the requests in flight finish.
  void gateway
    .close(config.shutdown)
    .then(() => tracing?.shutdown())
    .then(() => {
      logger.info('stopped');
      process.exit(0);
    });
}
process.on('SIGTERM', () => shutdown('SIGTERM'));
process.on('SIGINT', () => shutdown('SIGINT'));
// Under `npm start` the launcher holds an IPC channel: when it dies, so does the gateway.
process.on('disconnect', () => shutdown('launcher gone'));

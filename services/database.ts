import { embeddedDirectory, openDirectory, openInMemory, type EmbeddedDatabase } from './lib/embedded.js';
import { serveEmbedded } from './lib/embedded-server.js';
import { serviceEnvironment } from './lib/environment.js';
import { jsonLogger } from './lib/log.js';

/**
 * The embedded database as a process of its own: PGlite on DATA_DIR (or in memory), served over the
 * Postgres protocol on 127.0.0.1:<port> to the services, each in its own process, as a real server
 * would be (`npm start` runs it, and gives the services its DATABASE_URL):
 * `node --import tsx services/database.ts <port>`.
 */
async function main(): Promise<void> {
  const port = Number(process.argv[2]);
  if (!Number.isInteger(port) || port < 1 || port > 65_535) {
    console.error('usage: services/database.ts <port>');
    process.exit(2);
  }
  const { database, logLevel } = serviceEnvironment();
  if (database.kind === 'postgres') throw new Error('DATABASE_URL is set: the services use that server, not the embedded one');
  const log = jsonLogger('embedded-database', logLevel);
  let embedded: EmbeddedDatabase;
  if (database.kind === 'memory') {
    const pglite = await openInMemory();
    embedded = { pglite, close: () => pglite.close() };
  } else {
    embedded = await openDirectory(embeddedDirectory(database.dataDir));
  }
  const server = await serveEmbedded(embedded.pglite, '127.0.0.1', port);
  log.info({ url: `postgres://postgres@127.0.0.1:${server.port}/postgres`, dataDir: database.kind === 'memory' ? 'memory://' : database.dataDir }, 'embedded database listening');
  // Closed, its data written, before the process ends: a database killed mid-write recovers at its next start, slower.
  const stop = () => {
    void server
      .close()
      .then(() => embedded.close())
      .then(() => process.exit(0));
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
  // Under `npm start` the launcher holds an IPC channel: when it dies, so does this process.
  process.once('disconnect', stop);
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : String(error));
  process.exit(1);
});

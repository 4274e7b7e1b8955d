/**
 * `npm run reset-data`: empties the embedded database (DATA_DIR, by default the project's .data/), so
 * that the next start begins again from the demo data. Refused while a service holds it (stop
 * `npm start` first), and with DATABASE_URL set: a real server's data is for its operator to drop.
 */
import { embeddedDirectory, removeDirectory } from '../services/lib/embedded.js';
import { serviceEnvironment } from '../services/lib/environment.js';

try {
  const { database } = serviceEnvironment();
  if (database.kind === 'postgres') throw new Error('DATABASE_URL is set: reset-data empties the embedded database only (drop the services’ schemas on that server to start again)');
  if (database.kind === 'memory') {
    console.log('DATA_DIR=memory:// keeps nothing: nothing to reset');
  } else {
    const removed = removeDirectory(embeddedDirectory(database.dataDir));
    console.log(removed ? `removed the services' data from ${database.dataDir}: the next start begins from the demo data` : `no data in ${database.dataDir}`);
  }
} catch (error) {
  console.error(`reset-data failed: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
}

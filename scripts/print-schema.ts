/**
 * `npm run schema`: writes the served GraphQL schema to schema.graphql (a test checks it is current),
 * after reviewing the change with GraphQL Inspector: a breaking change CHANGELOG.md does not announce
 * stops it, as a permission rule that names a field the schema no longer has does, each explained.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { printSchema } from 'graphql';
import { loadConfig } from '../gateway/src/config.js';
import { createLogger } from '../gateway/src/observability/logger.js';
import { createGateway } from '../gateway/src/server.js';
import { explainPermissionsMismatch, reviewSchemaChange } from './lib/schema-changes.js';

const committed = new URL('../schema.graphql', import.meta.url);
const gateway = await createGateway(loadConfig({ LOG_LEVEL: 'silent' }), createLogger({ level: 'silent' })).catch((error: unknown) => {
  const explained = explainPermissionsMismatch(error);
  if (!explained) throw error;
  console.error(explained);
  process.exit(1);
});
try {
  if (!gateway.graphql) throw new Error('the gateway has no GraphQL face');
  const review = await reviewSchemaChange(readFileSync(committed, 'utf8'), gateway.graphql.schema, readFileSync(new URL('../CHANGELOG.md', import.meta.url), 'utf8'));
  for (const change of review.safe) console.log(`  ${change.message}`);
  for (const change of review.breaking) console.log(`  BREAKING ${change.message}`);
  if (review.unannounced.length > 0) {
    console.error(`npm run schema: breaking changes CHANGELOG.md's "Unreleased" section does not name:\n${review.unannounced.map((change) => `  \`${change.path}\`: ${change.message}`).join('\n')}\nName each there (in backticks), or undo it; schema.graphql is left as it was.`);
    process.exitCode = 1;
  } else {
    writeFileSync(committed, `${printSchema(gateway.graphql.schema)}\n`);
  }
} finally {
  await gateway.close({ graceMs: 100 });
}

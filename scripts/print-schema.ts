/** `npm run schema`: writes the served GraphQL schema to schema.graphql (a test checks it is current). */
import { writeFileSync } from 'node:fs';
import { printSchema } from 'graphql';
import { loadConfig } from '../gateway/src/config.js';
import { createLogger } from '../gateway/src/observability/logger.js';
import { createGateway } from '../gateway/src/server.js';

const gateway = await createGateway(loadConfig({ LOG_LEVEL: 'silent' }), createLogger({ level: 'silent' }));
if (!gateway.graphql) throw new Error('the gateway has no GraphQL face');
writeFileSync(new URL('../schema.graphql', import.meta.url), `${printSchema(gateway.graphql.schema)}\n`);
await gateway.close({ graceMs: 100 });

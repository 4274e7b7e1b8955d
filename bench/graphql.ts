/**
 * graphql-shield's cost on a 50-item list: the same query executed against the served schema with and
 * without the permission middleware, over the same Mesh and the same reference services, alternating
 * rounds so machine noise hits both; as one user, and as 1,000 users taking turns (each query a different
 * caller's, as the services see it). Usage: npm run bench:graphql [-- --rounds 6 --iterations 150]
 */
import { execute, parse } from 'graphql';
import { loadConfig } from '../gateway/src/config.js';
import type { GatewayContext } from '../gateway/src/graphql/contract/context.js';
import { sourceOperations } from '../gateway/src/graphql/contract/source.js';
import { ResponseCachePolicy } from '../gateway/src/graphql/cache-policy.js';
import { servedSchema } from '../gateway/src/graphql/handler.js';
import { protect } from '../gateway/src/graphql/permissions.js';
import { createLogger } from '../gateway/src/observability/logger.js';
import { createGateway } from '../gateway/src/server.js';
import { upstreamEnvironment } from '../shared/upstreams.js';
import { IN_MEMORY } from '../services/lib/environment.js';
import { startReferenceServices } from '../services/registry.js';
import { userPools, userSub, type Users } from './lib.js';

const argument = (name: string, fallback: number) => {
  const index = process.argv.indexOf(`--${name}`);
  return index === -1 ? fallback : Number(process.argv[index + 1]);
};
const rounds = argument('rounds', 6);
const iterations = argument('iterations', 150);
// Bounded: stop, whatever happens, well after the expected run.
setTimeout(() => {
  console.error('benchmark still running after 5 minutes: stopping');
  process.exit(1);
}, 5 * 60_000).unref();

const stack = await startReferenceServices({ anyPorts: true, env: { DATA_DIR: IN_MEMORY } });
const upstreamEnv = upstreamEnvironment(stack.urls);
const gateway = await createGateway(loadConfig({ LOG_LEVEL: 'silent', ...upstreamEnv }), createLogger({ level: 'silent' }));
if (!gateway.graphql) throw new Error('the gateway has no GraphQL face');
const { mesh } = gateway.graphql;
const plain = servedSchema(mesh.schema);
const shielded = protect(plain);
const sources = sourceOperations(mesh.rawSources);

const { one, many } = await userPools();
const document = parse('{ movies(limit: 50) { items { id title year genres durationMinutes free entitlement { canPlay reason } } } }');

/** One query as user `index` of `users` (their token, and the identity the gateway would have verified in it). */
async function runOnce(schema: typeof plain, users: Users, index: number): Promise<void> {
  const slot = index % users.tokens.length;
  const identity = { sub: userSub(slot), roles: ['user'], expiresAtMs: Date.now() + 3600_000 };
  const contextValue: GatewayContext = {
    requestId: 'bench',
    reportOperation: () => undefined,
    sources,
    cachePolicy: new ResponseCachePolicy(),
    user: identity,
    caller: { requestId: 'bench', identity, authorization: `Bearer ${users.tokens[slot] ?? ''}`, forwarded: { clientIp: '127.0.0.1', clientKey: '127.0.0.1', forwardedFor: '127.0.0.1', proto: 'http', host: 'bench' } },
    budget: { limit: 50, used: 0 },
    signal: new AbortController().signal,
  };
  const result = await execute({ schema, document, contextValue });
  if (result.errors) throw new Error(result.errors.map((error) => error.message).join('; '));
}

async function meanMs(schema: typeof plain, users: Users): Promise<number> {
  const started = process.hrtime.bigint();
  for (let i = 0; i < iterations; i++) await runOnce(schema, users, i);
  return Number(process.hrtime.bigint() - started) / 1e6 / iterations;
}

try {
  const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? 0;
  console.log('| schema | callers | median ms per 50-movie query (with entitlements) | rounds |');
  console.log('| --- | --- | ---: | --- |');
  const overheads: string[] = [];
  for (const users of [one, many]) {
    await meanMs(plain, users);
    await meanMs(shielded, users);
    const without: number[] = [];
    const withShield: number[] = [];
    for (let round = 0; round < rounds; round++) {
      without.push(await meanMs(plain, users));
      withShield.push(await meanMs(shielded, users));
    }
    console.log(`| without graphql-shield | ${users.label} | ${median(without).toFixed(2)} | ${without.map((value) => value.toFixed(2)).join(', ')} |`);
    console.log(`| with graphql-shield | ${users.label} | ${median(withShield).toFixed(2)} | ${withShield.map((value) => value.toFixed(2)).join(', ')} |`);
    overheads.push(`${((median(withShield) / median(without) - 1) * 100).toFixed(1)}% with ${users.label}`);
  }
  console.log(`\nshield overhead: ${overheads.join(', ')} (${iterations} queries a round, ${rounds} rounds)`);
} finally {
  await gateway.close({ graceMs: 100 });
  await stack.close();
}

/**
 * graphql-shield's cost on a 50-item list: the same query executed against the served schema with and
 * without the permission middleware, over the same Mesh and the same reference services, alternating
 * rounds so machine noise hits both. Usage: npm run bench:graphql [-- --rounds 6 --iterations 150]
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

const login = (await (await fetch(`${stack.urls.auth}/auth/login`, {
  method: 'POST',
  headers: { 'content-type': 'application/json' },
  body: '{"username":"alice","password":"alice-password"}',
})).json()) as { access_token: string };
const document = parse('{ movies(limit: 50) { items { id title year genres durationMinutes free entitlement { canPlay reason } } } }');

async function runOnce(schema: typeof plain): Promise<void> {
  const identity = { sub: '1', roles: ['user'], expiresAtMs: Date.now() + 3600_000 };
  const contextValue: GatewayContext = {
    requestId: 'bench',
    reportOperation: () => undefined,
    sources,
    cachePolicy: new ResponseCachePolicy(),
    user: identity,
    caller: { requestId: 'bench', identity, authorization: `Bearer ${login.access_token}`, forwarded: { clientIp: '127.0.0.1', clientKey: '127.0.0.1', forwardedFor: '127.0.0.1', proto: 'http', host: 'bench' } },
    budget: { limit: 50, used: 0 },
    signal: new AbortController().signal,
  };
  const result = await execute({ schema, document, contextValue });
  if (result.errors) throw new Error(result.errors.map((error) => error.message).join('; '));
}

async function meanMs(schema: typeof plain): Promise<number> {
  const started = process.hrtime.bigint();
  for (let i = 0; i < iterations; i++) await runOnce(schema);
  return Number(process.hrtime.bigint() - started) / 1e6 / iterations;
}

try {
  await meanMs(plain);
  await meanMs(shielded);
  const without: number[] = [];
  const withShield: number[] = [];
  for (let round = 0; round < rounds; round++) {
    without.push(await meanMs(plain));
    withShield.push(await meanMs(shielded));
  }
  const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? 0;
  console.log('| schema | median ms per 50-movie query (with entitlements) | rounds |');
  console.log('| --- | ---: | --- |');
  console.log(`| without graphql-shield | ${median(without).toFixed(2)} | ${without.map((value) => value.toFixed(2)).join(', ')} |`);
  console.log(`| with graphql-shield | ${median(withShield).toFixed(2)} | ${withShield.map((value) => value.toFixed(2)).join(', ')} |`);
  console.log(`\nshield overhead: ${((median(withShield) / median(without) - 1) * 100).toFixed(1)}% (${iterations} queries a round, ${rounds} rounds)`);
} finally {
  await gateway.close({ graceMs: 100 });
  await stack.close();
}

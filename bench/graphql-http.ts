/**
 * GraphQL throughput through the gateway, beside the same data over the REST passthrough, in one run:
 * the six reference services and the gateway each in their own process, as `npm start` runs them.
 * Usage: npm run bench:graphql-http [-- --seconds 5]
 */
import { UPSTREAM_NAMES, UPSTREAMS } from '../gateway/src/upstreams.js';
import { freePortBlock } from '../test/helpers/ports.js';
import { finish, measure, startProcess, stopAfter, table, type Measurement } from './lib.js';

const argument = (name: string, fallback: number) => {
  const index = process.argv.indexOf(`--${name}`);
  return index === -1 ? fallback : Number(process.argv[index + 1]);
};
const seconds = argument('seconds', 5);
stopAfter((seconds * 6 + 90) * 1000);

const base = await freePortBlock(7);
const env: NodeJS.ProcessEnv = { SERVICES_BASE_PORT: String(base), PORT: String(base + 6), NODE_ENV: 'production', LOG_LEVEL: 'warn', RATE_LIMIT_PER_MINUTE: '0', JWT_SECRET_KEY: 'bench-secret-that-is-long-enough-for-hs256-keys' };
const gatewayUrl = `http://127.0.0.1:${base + 6}`;
await Promise.all(UPSTREAM_NAMES.map((name) => startProcess('services/main', [name], env, `http://127.0.0.1:${base + UPSTREAMS[name].portOffset}/health`)));
await startProcess('gateway/src/main', [], env, `${gatewayUrl}/health`);

const post = (query: string, token?: string) => ({
  method: 'POST' as const,
  headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
  body: JSON.stringify({ query }),
});

try {
  const login = (await (await fetch(`${gatewayUrl}/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"username":"alice","password":"alice-password"}' })).json()) as {
    access_token: string;
  };
  const token = login.access_token;
  const auth = { authorization: `Bearer ${token}` };
  const plans = post('{ plans { id name } }');
  const movies = post('{ movies(limit: 50) { items { id title free entitlement { canPlay reason } } } }', token);
  await measure('warm-up', `${gatewayUrl}/graphql`, plans.headers, 2, 32, plans);
  const results: Measurement[] = [];
  for (let round = 1; round <= 2; round++) {
    results.push(await measure(`round ${round}: REST GET /subscriptions/plans`, `${gatewayUrl}/subscriptions/plans`, auth, seconds));
    results.push(await measure(`round ${round}: GraphQL { plans }`, `${gatewayUrl}/graphql`, plans.headers, seconds, 32, plans));
    results.push(await measure(`round ${round}: GraphQL 50 movies with entitlements`, `${gatewayUrl}/graphql`, movies.headers, seconds, 32, movies));
  }
  console.log(table(results));
} finally {
  finish();
}

/**
 * REST passthrough throughput: an authenticated GET through the gateway against the same upstream
 * called directly, measured side by side in one run (rounds alternate, so machine noise hits both).
 * The gateway runs as in production (JSON logs at info, an access line per request); beside it the
 * same gateway without the access log, with tracing on (every request sampled, exported to a local
 * OTLP sink), and with rate limiting in memory and in Redis.
 * Usage: npm run bench [-- --seconds 5 --rounds 2]
 */
import { loadavg } from 'node:os';
import { SignJWT } from 'jose';
import { UPSTREAM_NAMES, UPSTREAMS } from '../gateway/src/upstreams.js';
import { finish, measure, startProcess, stopAfter, table, type Measurement } from './lib.js';
import { freePortBlock } from '../test/helpers/ports.js';
import { startRedis } from '../test/helpers/redis.js';

const argument = (name: string, fallback: number) => {
  const index = process.argv.indexOf(`--${name}`);
  return index === -1 ? fallback : Number(process.argv[index + 1]);
};
const seconds = argument('seconds', 5);
const rounds = argument('rounds', 2);
stopAfter((seconds * 7 * rounds + 90) * 1000);
const secret = 'bench-secret-that-is-long-enough-for-hs256-keys';

const base = await freePortBlock(7);
const upstreamPort = base;
const upstreamUrl = `http://127.0.0.1:${upstreamPort}`;
const gatewayUrl = `http://127.0.0.1:${base + 1}`;
const limitedUrl = `http://127.0.0.1:${base + 2}`;
const sharedUrl = `http://127.0.0.1:${base + 3}`;
const quietUrl = `http://127.0.0.1:${base + 4}`;
const tracedUrl = `http://127.0.0.1:${base + 5}`;
const sinkUrl = `http://127.0.0.1:${base + 6}`;

await startProcess('bench/upstream-stub.ts', [String(upstreamPort)], {}, upstreamUrl);
await startProcess('bench/otlp-sink.ts', [String(base + 6)], {}, sinkUrl);
const gatewayEnv: NodeJS.ProcessEnv = { PORT: String(base + 1), JWT_SECRET_KEY: secret, LOG_LEVEL: 'info', NODE_ENV: 'production', RATE_LIMIT_PER_MINUTE: '0' };
for (const name of UPSTREAM_NAMES) gatewayEnv[UPSTREAMS[name].envVar] = upstreamUrl;
await startProcess('gateway/src/main', [], gatewayEnv, `${gatewayUrl}/health`);
await startProcess('gateway/src/main', [], { ...gatewayEnv, PORT: String(base + 4), ACCESS_LOG: 'false' }, `${quietUrl}/health`);
await startProcess('gateway/src/main', [], { ...gatewayEnv, PORT: String(base + 5), OTEL_EXPORTER_OTLP_ENDPOINT: sinkUrl, OTEL_TRACES_SAMPLER: 'always_on' }, `${tracedUrl}/health`);
// The same gateway with a limit no run reaches: what the limiter costs, in memory and through Redis.
const redis = await startRedis();
await startProcess('gateway/src/main', [], { ...gatewayEnv, PORT: String(base + 2), RATE_LIMIT_PER_MINUTE: '10000000' }, `${limitedUrl}/health`);
await startProcess('gateway/src/main', [], { ...gatewayEnv, PORT: String(base + 3), RATE_LIMIT_PER_MINUTE: '10000000', REDIS_URL: redis.url }, `${sharedUrl}/health`);

const token = await new SignJWT({ roles: ['user'] }).setProtectedHeader({ alg: 'HS256' }).setSubject('1').setExpirationTime('2h').sign(new TextEncoder().encode(secret));
const auth = { authorization: `Bearer ${token}` };

try {
  await measure('warm-up', `${gatewayUrl}/ondemand/movies/m1`, auth, 2);
  const results: Measurement[] = [];
  for (let round = 1; round <= rounds; round++) {
    results.push(await measure(`round ${round}: upstream alone`, `${upstreamUrl}/ondemand/movies/m1`, {}, seconds));
    results.push(await measure(`round ${round}: gateway, authenticated GET`, `${gatewayUrl}/ondemand/movies/m1`, auth, seconds));
    results.push(await measure(`round ${round}: gateway, unauthenticated → 401`, `${gatewayUrl}/ondemand/movies/m1`, {}, seconds));
    results.push(await measure(`round ${round}: gateway without access log, authenticated GET`, `${quietUrl}/ondemand/movies/m1`, auth, seconds));
    results.push(await measure(`round ${round}: gateway + tracing (100% sampled, OTLP), authenticated GET`, `${tracedUrl}/ondemand/movies/m1`, auth, seconds));
    results.push(await measure(`round ${round}: gateway + rate limit in memory, authenticated GET`, `${limitedUrl}/ondemand/movies/m1`, auth, seconds));
    results.push(await measure(`round ${round}: gateway + rate limit in Redis, authenticated GET`, `${sharedUrl}/ondemand/movies/m1`, auth, seconds));
  }
  console.log(table(results));
  const average = (label: string) => {
    const matching = results.filter((row) => row.label.endsWith(label));
    return matching.reduce((sum, row) => sum + row.requestsPerSecond, 0) / matching.length;
  };
  const ratio = average(': gateway, authenticated GET') / average('upstream alone');
  console.log(`\nauthenticated GET through the gateway: ${Math.round(average(': gateway, authenticated GET'))} req/s, ${(ratio * 100).toFixed(0)}% of the upstream alone`);
  const costOf = (label: string, what: string) => {
    const cost = 1 - average(label) / average(': gateway, authenticated GET');
    console.log(`${what} costs ${(cost * 100).toFixed(0)}% of that throughput`);
  };
  costOf('without access log, authenticated GET', 'the access log (compared without it: negative)');
  costOf('tracing (100% sampled, OTLP), authenticated GET', 'tracing every request');
  for (const store of ['memory', 'Redis']) costOf(`rate limit in ${store}, authenticated GET`, `rate limiting in ${store}`);
  console.log(`load average after: ${loadavg().map((value) => value.toFixed(2)).join(' ')}`);
} finally {
  await redis.stop();
  finish();
}

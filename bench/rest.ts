/**
 * The REST section: an authenticated GET /ondemand/movies/m1 (one token, a small JSON upstream) through
 * the gateway as it runs in production (JSON access lines at info), beside the upstream alone, nginx as
 * a plain reverse proxy (when installed) and a Fastify + @fastify/http-proxy + jose gateway that
 * verifies the token on every request; then the gateway's own options (no access log, tracing at 100%,
 * rate limiting in memory and in Redis). Rounds alternate, so machine noise hits every case.
 */
import { SignJWT } from 'jose';
import { UPSTREAM_NAMES, UPSTREAMS } from '../shared/upstreams.js';
import { freePortBlock } from '../test/helpers/ports.js';
import { measure, median, processStats, startNginx, startPeer, startProcess, startRedisServer, type Measurement } from './lib.js';

export interface Section {
  readonly title: string;
  readonly rounds: readonly Measurement[];
  /** Lines of the summary: medians, ratios, targets. */
  readonly summary: readonly string[];
  /** A table of its own instead of the rounds' (a section that measures no request rate). */
  readonly table?: string;
}

interface Case {
  readonly label: string;
  readonly url: string;
  readonly headers: Record<string, string>;
  readonly pid?: number;
}

const SECRET = 'bench-secret-that-is-long-enough-for-hs256-keys';
const PATH = '/ondemand/movies/m1';

export async function restSection(seconds: number, rounds: number): Promise<Section> {
  const base = await freePortBlock(11);
  // Ports: 0 upstream, 1 gateway, 2 Fastify, 3 nginx, 4–8 gateway variants, 9 OTLP sink, 10 Redis.
  const url = (offset: number) => `http://127.0.0.1:${base + offset}`;
  await startProcess('bench/upstream-stub.ts', [String(base)], {}, url(0));
  await startProcess('bench/otlp-sink.ts', [String(base + 9)], {}, url(9));
  const env: NodeJS.ProcessEnv = { PORT: String(base + 1), JWT_SECRET_KEY: SECRET, LOG_LEVEL: 'info', NODE_ENV: 'production', RATE_LIMIT_PER_MINUTE: '0' };
  for (const name of UPSTREAM_NAMES) env[UPSTREAMS[name].envVar] = url(0);
  const redis = await startRedisServer(base + 10);
  const gateway = await startProcess('gateway/src/main', [], env, `${url(1)}/health`);
  const fastify = await startPeer('fastify-gateway.mjs', [String(base + 2), url(0), SECRET], `${url(2)}/health`);
  const nginx = await startNginx(base + 3, url(0));
  const quiet = await startProcess('gateway/src/main', [], { ...env, PORT: String(base + 4), ACCESS_LOG: 'false' }, `${url(4)}/health`);
  const traced = await startProcess('gateway/src/main', [], { ...env, PORT: String(base + 5), OTEL_EXPORTER_OTLP_ENDPOINT: url(9), OTEL_TRACES_SAMPLER: 'always_on' }, `${url(5)}/health`);
  const limited = await startProcess('gateway/src/main', [], { ...env, PORT: String(base + 6), RATE_LIMIT_PER_MINUTE: '10000000' }, `${url(6)}/health`);
  const shared = await startProcess('gateway/src/main', [], { ...env, PORT: String(base + 7), RATE_LIMIT_PER_MINUTE: '10000000', REDIS_URL: redis.url }, `${url(7)}/health`);
  // Every client here asks the same URL with the same token at once: coalescing shares calls; without it, each is a call.
  const uncoalesced = await startProcess('gateway/src/main', [], { ...env, PORT: String(base + 8), UPSTREAM_COALESCING: 'false' }, `${url(8)}/health`);

  const token = await new SignJWT({ roles: ['user'] }).setProtectedHeader({ alg: 'HS256' }).setSubject('1').setExpirationTime('2h').sign(new TextEncoder().encode(SECRET));
  const auth = { authorization: `Bearer ${token}` };
  const pid = (child: { pid?: number | undefined }) => (child.pid === undefined ? {} : { pid: child.pid });
  const cases: Case[] = [
    { label: 'upstream alone', url: url(0), headers: {} },
    ...(nginx ? [{ label: 'nginx (1 worker), reverse proxy', url: url(3), headers: auth, ...pid(nginx) }] : []),
    { label: 'Fastify + http-proxy + jose', url: url(2), headers: auth, ...pid(fastify) },
    { label: 'gateway', url: url(1), headers: auth, ...pid(gateway) },
    { label: 'gateway, coalescing off', url: url(8), headers: auth, ...pid(uncoalesced) },
    { label: 'gateway, no access log', url: url(4), headers: auth, ...pid(quiet) },
    { label: 'gateway, tracing 100% (OTLP)', url: url(5), headers: auth, ...pid(traced) },
    { label: 'gateway, rate limit in memory', url: url(6), headers: auth, ...pid(limited) },
    { label: 'gateway, rate limit in Redis', url: url(7), headers: auth, ...pid(shared) },
  ];
  for (const entry of cases) await measure('warm-up', `${entry.url}${PATH}`, entry.headers, 2);
  const results: Measurement[] = [];
  for (let round = 1; round <= rounds; round++) {
    const order = round % 2 === 1 ? cases : [...cases].reverse();
    for (const entry of order) results.push(await measure(`round ${round}: ${entry.label}`, `${entry.url}${PATH}`, entry.headers, seconds, 32, { method: 'GET' }, entry.pid));
  }

  const medianOf = (label: string) => median(results.filter((row) => row.label.endsWith(`: ${label}`)).map((row) => row.requestsPerSecond));
  const gatewayRate = medianOf('gateway');
  const ratio = (label: string) => gatewayRate / medianOf(label);
  const uncoalescedRate = medianOf('gateway, coalescing off');
  const summary = [
    `gateway (production settings, access log on): median ${Math.round(gatewayRate)} req/s, RSS after ${processStats(gateway.pid)?.rssMb ?? '?'} MB`,
    `gateway ÷ Fastify + http-proxy + jose: ${ratio('Fastify + http-proxy + jose').toFixed(2)}× (target ≥ 2.0×); with coalescing off ${(uncoalescedRate / medianOf('Fastify + http-proxy + jose')).toFixed(2)}×`,
    nginx
      ? `gateway ÷ nginx: ${ratio('nginx (1 worker), reverse proxy').toFixed(2)}× (target ≥ 0.3×); with coalescing off ${(uncoalescedRate / medianOf('nginx (1 worker), reverse proxy')).toFixed(2)}×`
      : 'nginx is not installed: no nginx comparison',
    `gateway ÷ upstream alone: ${ratio('upstream alone').toFixed(3)}×`,
    ...['gateway, coalescing off', 'gateway, no access log', 'gateway, tracing 100% (OTLP)', 'gateway, rate limit in memory', 'gateway, rate limit in Redis'].map(
      (label) => `${label}: median ${Math.round(medianOf(label))} req/s (${((medianOf(label) / gatewayRate - 1) * 100).toFixed(0)}% beside the gateway's)`,
    ),
  ];
  return { title: `REST: authenticated GET ${PATH}, 32 connections, ${seconds} s per case`, rounds: results, summary };
}

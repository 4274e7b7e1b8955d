/**
 * The REST section: an authenticated GET /ondemand/movies/m1 (a small JSON upstream) through the gateway
 * as it runs in production (JSON access lines at info), beside the upstream alone, nginx as a plain
 * reverse proxy (when installed) and a Fastify + @fastify/http-proxy + jose gateway that verifies the
 * token on every request; then the gateway's own options (no access log, tracing at 100%, rate limiting
 * in memory and in Redis). Every case that carries a token runs with one user's, and with each request's
 * drawn from 1,000 users: the headline is the gateway with coalescing off and 1,000 users. Each case is
 * measured at full load, rounds alternating so machine noise hits every case, then at one fixed rate
 * (half the Fastify peer's most with 1,000 users) for its latency under load.
 */
import { getHeapStatistics } from 'node:v8';
import { GATEWAY_NODE_FLAGS } from '../shared/node-flags.js';
import { UPSTREAM_NAMES, UPSTREAMS } from '../shared/upstreams.js';
import { freePortBlock } from '../test/helpers/ports.js';
import { BENCH_SECRET, measure, median, processStats, startNginx, startPeer, startProcess, startRedisServer, userPools, verdict, type Measurement, type Users } from './lib.js';

export interface Section {
  readonly title: string;
  readonly rounds: readonly Measurement[];
  /** The cases again at a fixed request rate (named in each label): latency under load, not at the limit. */
  readonly paced?: readonly Measurement[];
  /** Lines of the summary: medians, ratios, targets. */
  readonly summary: readonly string[];
  /** A table of its own instead of the rounds' (a section that measures no request rate). */
  readonly table?: string;
}

interface Case {
  readonly label: string;
  readonly url: string;
  readonly users?: Users;
  readonly pid?: number;
}

const PATH = '/ondemand/movies/m1';
/** The targets of issue 24, against the peers, with 1,000 users and coalescing off. */
const TARGETS = { fastify: 2.0, nginx: 0.4 } as const;
/** Issue 24: the gateway's heap limit may cost at most this share of its throughput. */
const HEAP_COST_BUDGET = 0.05;
/** V8's own heap limit on this machine: the benchmark runs without the gateway's flag. */
const V8_DEFAULT_HEAP_MB = Math.round(getHeapStatistics().heap_size_limit / 1024 / 1024);
const GATEWAY_HEAP_FLAG = GATEWAY_NODE_FLAGS.find((flag) => flag.startsWith('--max-old-space-size')) ?? 'heap limit';
/** The fixed rate of the latency cases, as a share of the Fastify peer's most with 1,000 users. */
const PACE_SHARE = 0.5;

/** Seconds each case runs at a fixed rate: fewer than at full load, to keep the whole run near 20 minutes (its p99 is the median of the rounds'). */
export const pacedSeconds = (seconds: number) => Math.max(2, Math.ceil(seconds / 2));

/** The medians of a case's rounds, found by the end of their labels. */
export function mediansOf(rows: readonly Measurement[], label: string): { rate: number; p50: number; p99: number; cpu: number | undefined; client: number } {
  const mine = rows.filter((row) => row.label.endsWith(`: ${label}`));
  const cpus = mine.flatMap((row) => (row.cpuUsPerRequest === undefined ? [] : [row.cpuUsPerRequest]));
  return {
    rate: median(mine.map((row) => row.requestsPerSecond)),
    p50: median(mine.map((row) => row.p50Ms)),
    p99: median(mine.map((row) => row.p99Ms)),
    cpu: cpus.length === 0 ? undefined : Math.round(median(cpus)),
    client: Math.round(median(mine.map((row) => row.clientCpuUsPerRequest))),
  };
}

export async function restSection(seconds: number, rounds: number): Promise<Section> {
  const base = await freePortBlock(12);
  // Ports: 0 upstream, 1 gateway, 2 Fastify, 3 nginx, 4–8 and 11 gateway variants, 9 OTLP sink, 10 Redis.
  const url = (offset: number) => `http://127.0.0.1:${base + offset}`;
  const upstream = await startProcess('bench/upstream-stub.ts', [String(base)], {}, url(0));
  await startProcess('bench/otlp-sink.ts', [String(base + 9)], {}, url(9));
  const env: NodeJS.ProcessEnv = { PORT: String(base + 1), JWT_SECRET_KEY: BENCH_SECRET, LOG_LEVEL: 'info', NODE_ENV: 'production', RATE_LIMIT_PER_MINUTE: '0' };
  for (const name of UPSTREAM_NAMES) env[UPSTREAMS[name].envVar] = url(0);
  const redis = await startRedisServer(base + 10);
  const gateway = await startProcess('gateway/src/main', [], env, `${url(1)}/health`);
  const fastify = await startPeer('fastify-gateway.mjs', [String(base + 2), url(0), BENCH_SECRET], `${url(2)}/health`);
  const nginx = await startNginx(base + 3, url(0));
  const quiet = await startProcess('gateway/src/main', [], { ...env, PORT: String(base + 4), ACCESS_LOG: 'false' }, `${url(4)}/health`);
  const traced = await startProcess('gateway/src/main', [], { ...env, PORT: String(base + 5), OTEL_EXPORTER_OTLP_ENDPOINT: url(9), OTEL_TRACES_SAMPLER: 'always_on' }, `${url(5)}/health`);
  const limited = await startProcess('gateway/src/main', [], { ...env, PORT: String(base + 6), RATE_LIMIT_PER_MINUTE: '10000000' }, `${url(6)}/health`);
  const shared = await startProcess('gateway/src/main', [], { ...env, PORT: String(base + 7), RATE_LIMIT_PER_MINUTE: '10000000', REDIS_URL: redis.url }, `${url(7)}/health`);
  // With one user, every client asks the same URL with the same token at once: coalescing shares calls; without it, each is a call.
  const uncoalesced = await startProcess('gateway/src/main', [], { ...env, PORT: String(base + 8), UPSTREAM_COALESCING: 'false' }, `${url(8)}/health`);
  // The headline again with the heap limit V8 picks for this machine (this process runs without the gateway's flag; a later flag wins): what the gateway's 256 MB limit costs.
  const defaultHeap = await startProcess('gateway/src/main', [], { ...env, PORT: String(base + 11), UPSTREAM_COALESCING: 'false' }, `${url(11)}/health`, [`--max-old-space-size=${V8_DEFAULT_HEAP_MB}`]);

  const { one, many } = await userPools();
  const pid = (child: { pid?: number | undefined }) => (child.pid === undefined ? {} : { pid: child.pid });
  const both = (label: string, offset: number, child: { pid?: number | undefined }): Case[] => [one, many].map((users) => ({ label: `${label}, ${users.label}`, url: url(offset), users, ...pid(child) }));
  const labels = {
    nginx: `nginx (1 worker), reverse proxy, ${many.label}`,
    fastify: `Fastify + http-proxy + jose, ${many.label}`,
    gateway: `gateway, ${many.label}`,
    headline: `gateway, coalescing off, ${many.label}`,
    defaultHeap: `gateway, coalescing off, V8's default heap (${V8_DEFAULT_HEAP_MB} MB), ${many.label}`,
  };
  const cases: Case[] = [
    { label: 'upstream alone', url: url(0), ...pid(upstream) },
    // nginx passes the token on without reading it: one user or many costs it the same.
    ...(nginx ? [{ label: labels.nginx, url: url(3), users: many, ...pid(nginx) }] : []),
    ...both('Fastify + http-proxy + jose', 2, fastify),
    ...both('gateway', 1, gateway),
    ...both('gateway, coalescing off', 8, uncoalesced),
    { label: labels.defaultHeap, url: url(11), users: many, ...pid(defaultHeap) },
    // The options, each beside the gateway with the same 1,000 users.
    { label: `gateway, no access log, ${many.label}`, url: url(4), users: many, ...pid(quiet) },
    { label: `gateway, tracing 100% (OTLP), ${many.label}`, url: url(5), users: many, ...pid(traced) },
    { label: `gateway, rate limit in memory, ${many.label}`, url: url(6), users: many, ...pid(limited) },
    { label: `gateway, rate limit in Redis, ${many.label}`, url: url(7), users: many, ...pid(shared) },
  ];
  const loadOf = (entry: Case, extra: { seconds: number; rate?: number }) => ({ url: `${entry.url}${PATH}`, ...(entry.users ? { tokens: entry.users.tokens } : {}), ...(entry.pid === undefined ? {} : { pid: entry.pid }), ...extra });
  for (const entry of cases) await measure('warm-up', loadOf(entry, { seconds: 1 }));
  const results: Measurement[] = [];
  for (let round = 1; round <= rounds; round++) {
    const order = round % 2 === 1 ? cases : [...cases].reverse();
    for (const entry of order) results.push(await measure(`round ${round}: ${entry.label}`, loadOf(entry, { seconds })));
  }
  const at = (label: string) => mediansOf(results, label);
  const rate = Math.max(1, Math.round(at(labels.fastify).rate * PACE_SHARE));
  const paced: Measurement[] = [];
  for (let round = 1; round <= rounds; round++) {
    const order = round % 2 === 1 ? cases : [...cases].reverse();
    for (const entry of order) paced.push(await measure(`round ${round}, ${rate} req/s: ${entry.label}`, loadOf(entry, { seconds: pacedSeconds(seconds), rate })));
  }

  const pacedAt = (label: string) => mediansOf(paced, label);
  const describe = (label: string) => {
    const full = at(label);
    const steady = pacedAt(label);
    return `${Math.round(full.rate)} req/s, ${full.cpu ?? '?'} µs CPU/request; at ${rate} req/s p50 ${steady.p50} ms, p99 ${steady.p99} ms`;
  };
  const headline = at(labels.headline).rate;
  const versus = (peer: string, target: number) => {
    const ratio = headline / at(peer).rate;
    return `${ratio.toFixed(2)}× (${verdict(ratio, target)})`;
  };
  const gatewayRate = at(labels.gateway).rate;
  const heapCost = () => {
    const cost = 1 - headline / at(labels.defaultHeap).rate;
    return cost <= 0 ? `nothing: it served ${(-cost * 100).toFixed(1)}% more (met)` : `${(cost * 100).toFixed(1)}% (${cost <= HEAP_COST_BUDGET ? 'met' : 'missed'})`;
  };
  const summary = [
    `headline, gateway with coalescing off and ${many.label} (access log on, production settings): ${describe(labels.headline)}; RSS after ${processStats(uncoalesced.pid)?.rssMb ?? '?'} MB`,
    `Fastify + http-proxy + jose, ${many.label}: ${describe(labels.fastify)}; the gateway ÷ it: ${versus(labels.fastify, TARGETS.fastify)}`,
    nginx ? `nginx (1 worker), ${many.label}: ${describe(labels.nginx)}; the gateway ÷ it: ${versus(labels.nginx, TARGETS.nginx)}` : 'nginx is not installed (apt-get install nginx): no nginx comparison',
    `upstream alone: ${describe('upstream alone')}`,
    `latency at a fixed ${rate} req/s (${PACE_SHARE * 100}% of the Fastify peer's most with ${many.label}) for every case, ${pacedSeconds(seconds)} s a round, open loop: latency counted from when each request was due`,
    ...[`gateway, ${one.label}`, `gateway, coalescing off, ${one.label}`, `Fastify + http-proxy + jose, ${one.label}`, labels.gateway].map((label) => `${label}: ${describe(label)}`),
    ...['no access log', 'tracing 100% (OTLP)', 'rate limit in memory', 'rate limit in Redis'].map((option) => {
      const label = `gateway, ${option}, ${many.label}`;
      return `${label}: ${describe(label)} (${((at(label).rate / gatewayRate - 1) * 100).toFixed(0)}% beside the gateway's with ${many.label})`;
    }),
    `${labels.defaultHeap}: ${describe(labels.defaultHeap)}; RSS after ${processStats(defaultHeap.pid)?.rssMb ?? '?'} MB; the gateway's ${GATEWAY_HEAP_FLAG} costs ${heapCost()} in throughput (budget ≤ ${HEAP_COST_BUDGET * 100}%)`,
    `the load generator's own CPU (it shares the cores): ${at(`gateway, ${one.label}`).client} µs per request with one token, ${at(labels.gateway).client} µs drawing from ${many.label}`,
  ];
  return { title: `REST: authenticated GET ${PATH}, 32 connections, ${seconds} s per case`, rounds: results, paced, summary };
}


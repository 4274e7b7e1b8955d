/**
 * The cluster section: three gateway replicas behind one L4 entry point (scripts/lib/balancer.ts, as a
 * Kubernetes Service spreads connections), each keeping its caches to itself, beside three sharing them
 * through Redis (REDIS_URL), rounds alternating. The workload asks 3000 distinct movies at random, each
 * request as one of 1,000 users, each answer cacheable for 5 s, from an upstream that takes 10 ms: every replica of the first cluster must
 * fetch each one itself, the second fetches it once. Then, on one replica of the shared cluster, the
 * gateway CPU a shared hit costs beside a local one (one user: token checks apart), and the bus's delay under load.
 */
import autocannon from 'autocannon';
import { UPSTREAM_NAMES, UPSTREAMS } from '../shared/upstreams.js';
import { listenBalancer } from '../scripts/lib/balancer.js';
import { freePortBlock } from '../test/helpers/ports.js';
import { BENCH_SECRET, bearerFrom, median, processStats, signToken, startProcess, startRedisServer, userPools, verdict, type Measurement, type Users } from './lib.js';
import type { Section } from './rest.js';

const KEYS = 3000;
/** How long the upstream takes to answer a GET: a service that reads a database, not a loopback echo. */
const UPSTREAM_MS = 10;
const PASSWORD = 'bench-redis-password';

/** How many requests the stub at `url` had. */
const upstreamCalls = async (url: string) => Number(await (await fetch(`${url}/__calls`)).text());

/** Requests over `connections` for `seconds`, or `amount` in all, each to the next path `pathOf` gives, as one of `users`. */
async function load(url: string, users: Users, pathOf: (index: number) => string, options: { seconds?: number; amount?: number; connections?: number }) {
  let index = 0;
  return autocannon({
    url,
    connections: options.connections ?? 32,
    ...(options.amount ? { amount: options.amount } : { duration: options.seconds ?? 5 }),
    requests: [{ method: 'GET', setupRequest: (request) => ({ ...request, path: pathOf(index++), headers: { ...request.headers, ...bearerFrom(users.tokens) } }) }],
  });
}

/** The p99 of a Prometheus histogram summed over `texts`: the upper bound of the first bucket holding 99% of the samples. */
function histogramP99(texts: readonly string[], name: string): { count: number; p99Ms: number | undefined } {
  const buckets = new Map<number, number>();
  for (const text of texts) {
    for (const match of text.matchAll(new RegExp(`^${name}_bucket\\{le="([^"]+)"\\} (\\d+)$`, 'gm'))) {
      const bound = match[1] === '+Inf' ? Infinity : Number(match[1]);
      buckets.set(bound, (buckets.get(bound) ?? 0) + Number(match[2]));
    }
  }
  const count = buckets.get(Infinity) ?? 0;
  const bound = [...buckets.entries()].sort(([a], [b]) => a - b).find(([, cumulative]) => cumulative >= count * 0.99)?.[0];
  return { count, p99Ms: count === 0 || bound === undefined ? undefined : bound * 1000 };
}

export async function clusterSection(seconds: number, rounds: number): Promise<Section> {
  const base = await freePortBlock(10);
  // Ports: 0 stub; 1–3 replicas on their own; 4 their entry; 5–7 replicas sharing through Redis; 8 their entry; 9 Redis.
  const url = (offset: number) => `http://127.0.0.1:${base + offset}`;
  await startProcess('bench/upstream-stub.ts', [String(base), 'public, max-age=5', String(UPSTREAM_MS)], {}, url(0));
  const redis = await startRedisServer(base + 9, PASSWORD);
  const env: NodeJS.ProcessEnv = { JWT_SECRET_KEY: BENCH_SECRET, LOG_LEVEL: 'info', NODE_ENV: 'production', RATE_LIMIT_PER_MINUTE: '0' };
  for (const name of UPSTREAM_NAMES) env[UPSTREAMS[name].envVar] = url(0);
  const replicas = (first: number, extra: NodeJS.ProcessEnv) => Promise.all([0, 1, 2].map((i) => startProcess('gateway/src/main', [], { ...env, ...extra, PORT: String(base + first + i) }, `${url(first + i)}/health`)));
  const entries = [];
  try {
    const alone = await replicas(1, {});
    const shared = await replicas(5, { REDIS_URL: redis.url, REDIS_PASSWORD: PASSWORD });
    const targets = (first: number) => [0, 1, 2].map((i) => ({ host: '127.0.0.1', port: base + first + i }));
    entries.push(await listenBalancer('127.0.0.1', base + 4, targets(1)), await listenBalancer('127.0.0.1', base + 8, targets(5)));
    const { one, many } = await userPools();
    const randomMovie = () => `/ondemand/movies/m${Math.floor(Math.random() * KEYS)}`;
    const cases = [
      { label: 'three replicas, caches per process', entry: url(4), pids: alone.map((child) => child.pid) },
      { label: 'three replicas, caches shared (Redis)', entry: url(8), pids: [...shared.map((child) => child.pid), redis.pid] },
    ];
    for (const entry of cases) await load(entry.entry, many, randomMovie, { seconds: 2 });

    // The CPU of a case is its three replicas' (and Redis's, for the shared one), per request.
    const cpuMsOf = (pids: readonly (number | undefined)[]) => pids.reduce<number>((sum, pid) => sum + (processStats(pid)?.cpuMs ?? 0), 0);
    const results: (Measurement & { hitRate: number })[] = [];
    for (let round = 1; round <= rounds; round++) {
      for (const entry of round % 2 === 1 ? cases : [...cases].reverse()) {
        const callsBefore = await upstreamCalls(url(0));
        const cpuBefore = cpuMsOf(entry.pids);
        const clientBefore = process.cpuUsage();
        const result = await load(entry.entry, many, randomMovie, { seconds });
        const client = process.cpuUsage(clientBefore);
        const perRequest = (us: number) => Math.round(us / Math.max(1, result.requests.total));
        const cpuUsPerRequest = perRequest((cpuMsOf(entry.pids) - cpuBefore) * 1000);
        const calls = (await upstreamCalls(url(0))) - callsBefore;
        const hitRate = 1 - calls / Math.max(1, result.requests.total);
        const counts = { requestsPerSecond: Math.round(result.requests.average), p50Ms: result.latency.p50, p99Ms: result.latency.p99, non2xx: result.non2xx + result.errors + result.timeouts, cpuUsPerRequest, clientCpuUsPerRequest: perRequest(client.user + client.system) };
        results.push({ label: `round ${round}: ${entry.label} (upstream hit rate ${(hitRate * 100).toFixed(1)}%)`, hitRate, ...counts });
      }
    }

    // A shared hit beside a local one, on one replica: 3000 answers another replica stored (kept ten
    // minutes) are asked of it once — each a shared hit, then kept locally — then again, each a local hit.
    const reader = shared[0];
    const long = (index: number) => `/ondemand/movies/long-${index % KEYS}`;
    await load(url(6), one, long, { amount: KEYS, connections: 8 });
    const cpuOf = async (path: (index: number) => string) => {
      const before = processStats(reader?.pid);
      const result = await load(url(5), one, path, { amount: KEYS, connections: 8 });
      const after = processStats(reader?.pid);
      return before && after ? ((after.cpuMs - before.cpuMs) * 1000) / result.requests.total : NaN;
    };
    const sharedHitUs = await cpuOf(long);
    const localHitUs = await cpuOf(long);

    // The bus under load: changes through one replica (the second) while the cluster serves, timed where they arrive (the others).
    const admin = { authorization: `Bearer ${await signToken('1', ['user', 'admin'])}`, 'content-type': 'application/json' };
    const busy = load(url(8), many, randomMovie, { seconds: Math.max(4, seconds) });
    for (let i = 0; i < 200; i++) {
      await fetch(`${url(6)}/admin/ondemand/movies/m${i % KEYS}`, { method: 'PUT', headers: admin, body: JSON.stringify({ title: `edit ${i}`, genres: ['drama'], free: true }) });
    }
    await busy;
    const scraped = await Promise.all([url(5), url(7)].map(async (replica) => (await fetch(`${replica}/metrics`)).text()));
    const bus = histogramP99(scraped, 'gateway_cache_bus_delay_seconds');

    const medianOf = (label: string) => median(results.filter((row) => row.label.includes(`: ${label} (`)).map((row) => row.requestsPerSecond));
    const hitOf = (label: string) => median(results.filter((row) => row.label.includes(`: ${label} (`)).map((row) => row.hitRate));
    const [aloneLabel, sharedLabel] = cases.map((entry) => entry.label) as [string, string];
    const summary = [
      `upstream hit rate: ${(hitOf(sharedLabel) * 100).toFixed(1)}% shared beside ${(hitOf(aloneLabel) * 100).toFixed(1)}% per process (medians; ${KEYS} movies at random, each cacheable 5 s)`,
      `req/s: shared ÷ per process ${(medianOf(sharedLabel) / medianOf(aloneLabel)).toFixed(2)}× (medians ${Math.round(medianOf(sharedLabel))} / ${Math.round(medianOf(aloneLabel))})`,
      `gateway CPU per request on one replica: a shared hit ${sharedHitUs.toFixed(0)} µs, a local hit ${localHitUs.toFixed(0)} µs: ${(sharedHitUs / localHitUs).toFixed(2)}× (${verdict(sharedHitUs / localHitUs, 2, { atMost: true })})`,
      `invalidation bus under load: ${bus.count} deliveries to two replicas, p99 ≤ ${bus.p99Ms ?? '?'} ms (histogram bucket; ${bus.p99Ms === undefined ? 'target ≤ 100 ms: no deliveries measured' : verdict(bus.p99Ms, 100, { unit: ' ms', atMost: true, digits: 0 })})`,
    ];
    return { title: `Cluster: three replicas behind one entry point, ${many.label}, 32 connections, ${seconds} s per case`, rounds: results, summary };
  } finally {
    for (const entry of entries) entry.close();
  }
}

/**
 * The GraphQL section: the contract's workloads through the gateway, with its caches off and on, beside
 * Hive Gateway serving a supergraph that Mesh Compose builds from the same schemas/ (bench/peers:
 * mesh.config.mjs, gateway.config.mjs), without and with its own response cache, over the same six
 * reference services, each in its own process as `npm start` runs them. Each workload is sent by today's
 * callers (anonymous for the catalogue, one user for the entitlements) and by 1,000 users. All must give
 * the same answers before anything is measured; rounds alternate; then every case again at a fixed rate,
 * half Hive Gateway's most (no cache) for that workload and callers. Upstream calls per operation come
 * from the gateway's own metrics.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { referenceServiceUrls, specPath, UPSTREAM_NAMES, UPSTREAMS } from '../shared/upstreams.js';
import { freePortBlock } from '../test/helpers/ports.js';
import { BENCH_SECRET, measure, PEERS_DIR, processStats, restedRssMb, startPeer, startProcess, startServices, userPools, verdict, type Measurement, type Users } from './lib.js';
import { mediansOf, pacedSeconds, type Section } from './rest.js';

interface Workload {
  readonly name: string;
  /** The contract's query, as the gateway serves it. */
  readonly query: string;
  /** The same query over the composed supergraph: its generated root fields answer unions of status codes. */
  readonly peerQuery: string;
  readonly authenticated: boolean;
  /** A catalog query anyone may send: the upstream cache's target case. */
  readonly anonymousCatalog: boolean;
}

const WORKLOADS: readonly Workload[] = [
  { name: 'plans', query: '{ plans { id name } }', peerQuery: '{ plans { id name } }', authenticated: false, anonymousCatalog: true },
  {
    name: '50 movies (id, title)',
    query: '{ movies(limit: 50) { items { id title } } }',
    peerQuery: '{ movies(limit: 50) { ... on OnDemand_MovieList { items { id title } } } }',
    authenticated: false,
    anonymousCatalog: true,
  },
  {
    name: '50 movies with entitlement',
    query: '{ movies(limit: 50) { items { id title entitlement { canPlay reason } } } }',
    peerQuery: '{ movies(limit: 50) { ... on OnDemand_MovieList { items { id title entitlement { canPlay reason } } } } }',
    authenticated: true,
    anonymousCatalog: false,
  },
  {
    name: 'search, movie and channel hits',
    query: '{ search(q: "the", limit: 20) { total items { kind id title movie { id year } channel { id number } } } }',
    peerQuery: '{ search(q: "the", limit: 20) { ... on GlobalSearch_SearchResults { total items { kind id title movie { id year } channel { id number } } } } }',
    authenticated: false,
    anonymousCatalog: true,
  },
];

const HIVE = 'Hive Gateway';
const HIVE_CACHED = `${HIVE}, its response cache`;
/** Issue 24's targets for the gateway ÷ Hive Gateway (cache off), and the earlier one for the anonymous catalogue with our cache on against a Hive Gateway without one. */
const TARGETS = { cacheOff: 1.5, catalogueCacheOn: 5 } as const;
/** The fixed rate of a workload's latency cases, as a share of Hive Gateway's most (no cache) with the same callers. */
const PACE_SHARE = 0.5;
const ANONYMOUS: Users = { label: 'anonymous', tokens: [] };

/** Upstream calls the gateway made so far, from its metrics. */
async function upstreamCallsOf(gatewayUrl: string): Promise<number> {
  const text = await (await fetch(`${gatewayUrl}/metrics`)).text();
  return [...text.matchAll(/^gateway_upstream_requests_total\{[^}]*\} (\d+)/gm)].reduce((sum, [, value]) => sum + Number(value), 0);
}

/** Mesh Compose's supergraph of the six specs, pointing at the running services; its file's path. */
function composeSupergraph(base: number): string {
  const urls = referenceServiceUrls(base);
  const subgraphs = UPSTREAM_NAMES.map((name) => ({ name: UPSTREAMS[name].meshSource, spec: specPath(name), endpoint: urls[name] }));
  const file = `${mkdtempSync(`${tmpdir()}/bench-supergraph-`)}/supergraph.graphql`;
  execFileSync(`${PEERS_DIR}node_modules/.bin/mesh-compose`, ['-o', file], { cwd: PEERS_DIR, env: { ...process.env, BENCH_SUBGRAPHS: JSON.stringify(subgraphs) }, stdio: ['ignore', 'ignore', 'inherit'] });
  return file;
}

interface Target {
  readonly label: string;
  readonly url: string;
  readonly pid: number | undefined;
  readonly peer: boolean;
}

/** A workload sent by one kind of callers: what a line of the results names. */
interface Variant {
  readonly workload: Workload;
  readonly users: Users;
  readonly name: string;
}

export async function graphqlSection(seconds: number, rounds: number): Promise<Section> {
  // Ports: 0–5 services, 6–7 gateways, 8 Hive Gateway, 9 the database, 10 Hive Gateway with its response cache.
  const base = await freePortBlock(11);
  const env: NodeJS.ProcessEnv = { SERVICES_BASE_PORT: String(base), NODE_ENV: 'production', LOG_LEVEL: 'info', RATE_LIMIT_PER_MINUTE: '0', JWT_SECRET_KEY: BENCH_SECRET };
  await startServices(base, base + 9, env);
  const gateways = [
    { label: 'gateway, cache off', url: `http://127.0.0.1:${base + 6}`, env: { ...env, PORT: String(base + 6), UPSTREAM_CACHE_MAX_BYTES: '0' } },
    { label: 'gateway, cache on', url: `http://127.0.0.1:${base + 7}`, env: { ...env, PORT: String(base + 7) } },
  ];
  const targets: Target[] = await Promise.all(
    gateways.map(async (gateway) => ({ label: gateway.label, url: gateway.url, peer: false, pid: (await startProcess('gateway/src/main', [], gateway.env, `${gateway.url}/health`)).pid })),
  );
  const supergraph = composeSupergraph(base);
  for (const [label, port, responseCache] of [[HIVE, base + 8, 'off'], [HIVE_CACHED, base + 10, 'on']] as const) {
    const hiveUrl = `http://127.0.0.1:${port}`;
    const hive = await startPeer('node_modules/@graphql-hive/gateway/dist/bin.js', ['supergraph', supergraph, '--port', String(port), '--host', '127.0.0.1', '--fork', '1'], `${hiveUrl}/healthcheck`, {
      BENCH_SUPERGRAPH: supergraph,
      BENCH_RESPONSE_CACHE: responseCache,
      JWT_SECRET_KEY: BENCH_SECRET,
      NODE_ENV: 'production',
    });
    targets.push({ label, url: hiveUrl, peer: true, pid: hive.pid });
  }
  const first = targets[0]?.url ?? '';
  const { one, many } = await userPools();
  // Every workload with today's callers (the catalogue anonymous, the entitlements one user's) and with 1,000 users, as apps send their token on every query.
  const variants: Variant[] = WORKLOADS.flatMap((workload) => [workload.authenticated ? one : ANONYMOUS, many].map((users) => ({ workload, users, name: `${workload.name}, ${users.label}` })));

  const loadOf = (variant: Variant, target: Target, extra: { seconds: number; rate?: number }) => ({
    url: `${target.url}/graphql`,
    headers: { 'content-type': 'application/json' },
    tokens: variant.users.tokens,
    shape: { method: 'POST' as const, body: JSON.stringify({ query: target.peer ? variant.workload.peerQuery : variant.workload.query }) },
    pid: target.pid,
    ...extra,
  });
  const post = async (workload: Workload, target: Target, token?: string) => {
    const body = JSON.stringify({ query: target.peer ? workload.peerQuery : workload.query });
    // Parsed and printed again: the servers differ in white space only.
    return JSON.stringify(await (await fetch(`${target.url}/graphql`, { method: 'POST', headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) }, body })).json());
  };
  const summary: string[] = [];
  // The same answers from all, for one caller and another of the 1,000, and how many upstream calls one operation makes (cache off).
  for (const workload of WORKLOADS) {
    for (const token of [workload.authenticated ? one.tokens[0] : undefined, many.tokens[many.tokens.length - 1]]) {
      const answers = await Promise.all(targets.map((target) => post(workload, target, token)));
      if (new Set(answers).size !== 1 || answers[0]?.includes('"errors"')) throw new Error(`the gateways do not answer ${workload.name} alike: ${answers.map((answer) => answer.slice(0, 200)).join(' / ')}`);
    }
    const before = await upstreamCallsOf(first);
    await post(workload, targets[0] as Target, workload.authenticated ? one.tokens[0] : undefined);
    summary.push(`${workload.name}: ${(await upstreamCallsOf(first)) - before} upstream calls per operation without the cache`);
  }
  for (const target of targets) for (const workload of WORKLOADS) await measure('warm-up', loadOf({ workload, users: many, name: '' }, target, { seconds: 1 }));
  const results: Measurement[] = [];
  for (let round = 1; round <= rounds; round++) {
    for (const variant of variants) {
      for (const target of round % 2 === 1 ? targets : [...targets].reverse()) results.push(await measure(`round ${round}: ${variant.name}, ${target.label}`, loadOf(variant, target, { seconds })));
    }
  }
  const at = (variant: Variant, target: string) => mediansOf(results, `${variant.name}, ${target}`);
  const rateOf = new Map(variants.map((variant) => [variant, Math.max(1, Math.round(at(variant, HIVE).rate * PACE_SHARE))]));
  const paced: Measurement[] = [];
  for (let round = 1; round <= rounds; round++) {
    for (const variant of variants) {
      const rate = rateOf.get(variant) ?? 1;
      for (const target of round % 2 === 1 ? targets : [...targets].reverse()) paced.push(await measure(`round ${round}, ${rate} req/s: ${variant.name}, ${target.label}`, loadOf(variant, target, { seconds: pacedSeconds(seconds), rate })));
    }
  }
  for (const variant of variants) {
    const [off, on, peer, peerCached] = targets.map((target) => at(variant, target.label).rate) as [number, number, number, number];
    const catalogue = variant.workload.anonymousCatalog && variant.users === ANONYMOUS;
    summary.push(
      `${variant.name}: gateway ÷ ${HIVE}, both without a response cache, ${(off / peer).toFixed(2)}× (${verdict(off / peer, TARGETS.cacheOff)}); with the caches on, gateway ÷ ${HIVE_CACHED} ${(on / peerCached).toFixed(2)}×, ÷ ${HIVE} without ${(on / peer).toFixed(2)}×${catalogue ? ` (${verdict(on / peer, TARGETS.catalogueCacheOn)})` : ''}; medians ${targets.map((target) => `${target.label} ${Math.round(at(variant, target.label).rate)}`).join(', ')} req/s`,
      `${variant.name}, latency at ${rateOf.get(variant) ?? '?'} req/s (${PACE_SHARE * 100}% of ${HIVE}'s most): ${targets.map((target) => `${target.label} p50 ${mediansOf(paced, `${variant.name}, ${target.label}`).p50} / p99 ${mediansOf(paced, `${variant.name}, ${target.label}`).p99} ms`).join(', ')}`,
    );
  }
  summary.push(
    `${HIVE_CACHED}: @graphql-mesh/plugin-response-cache through its \`responseCaching\` option, each response kept for the least max-age of its upstream answers as the gateway's, keyed by the caller's token (anonymous callers share); the gateway's response cache too (a token's responses answered to that token only, for the same lifetimes, never past the token's expiry), and its upstream cache shares public upstream answers between all callers`,
    `the load generator's own CPU (it shares the cores): ${at(variants[0] as Variant, 'gateway, cache on').client} µs per request (${variants[0]?.name ?? ''}), ${at(variants[1] as Variant, 'gateway, cache on').client} µs (${variants[1]?.name ?? ''})`,
  );
  const afterLoad = targets.map((target) => `${target.label} ${processStats(target.pid)?.rssMb ?? '?'} MB`);
  const rested = await Promise.all(targets.map((target) => restedRssMb(target.pid)));
  const gatewaysRested = Math.max(...rested.slice(0, gateways.length).map((mb) => mb ?? Number.POSITIVE_INFINITY));
  summary.push(
    `RSS right after the last round: ${afterLoad.join(', ')}; the least within 60 s of rest after it (V8's memory reducer): ${targets.map((target, index) => `${target.label} ${rested[index] ?? '?'} MB`).join(', ')} (the gateway's: ${verdict(gatewaysRested, 200, { unit: ' MB', atMost: true, digits: 0 })})`,
  );
  return { title: `GraphQL: the contract's workloads beside ${HIVE}, 32 connections, ${seconds} s per case`, rounds: results, paced, summary };
}

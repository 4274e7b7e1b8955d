/**
 * The GraphQL section: the contract's workloads through the gateway, with the shared upstream cache off
 * and on, beside Hive Gateway serving a supergraph that Mesh Compose builds from the same schemas/
 * (bench/peers: mesh.config.mjs, gateway.config.mjs), over the same six reference services, each in
 * its own process as `npm start` runs them. Both must give the same answers before anything is
 * measured; rounds alternate. Upstream calls per operation come from the gateway's own metrics.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { referenceServiceUrls, specPath, UPSTREAM_NAMES, UPSTREAMS } from '../shared/upstreams.js';
import { freePortBlock } from '../test/helpers/ports.js';
import { measure, median, PEERS_DIR, processStats, restedRssMb, startPeer, startProcess, startServices, type Measurement } from './lib.js';
import type { Section } from './rest.js';

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

const SECRET = 'bench-secret-that-is-long-enough-for-hs256-keys';
const HIVE = 'Hive Gateway';

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

export async function graphqlSection(seconds: number, rounds: number): Promise<Section> {
  const base = await freePortBlock(10);
  const env: NodeJS.ProcessEnv = { SERVICES_BASE_PORT: String(base), NODE_ENV: 'production', LOG_LEVEL: 'info', RATE_LIMIT_PER_MINUTE: '0', JWT_SECRET_KEY: SECRET };
  await startServices(base, base + 9, env);
  const gateways = [
    { label: 'gateway, cache off', url: `http://127.0.0.1:${base + 6}`, env: { ...env, PORT: String(base + 6), UPSTREAM_CACHE_MAX_BYTES: '0' } },
    { label: 'gateway, cache on', url: `http://127.0.0.1:${base + 7}`, env: { ...env, PORT: String(base + 7) } },
  ];
  const targets: Target[] = await Promise.all(
    gateways.map(async (gateway) => ({ label: gateway.label, url: gateway.url, peer: false, pid: (await startProcess('gateway/src/main', [], gateway.env, `${gateway.url}/health`)).pid })),
  );
  const supergraph = composeSupergraph(base);
  const hiveUrl = `http://127.0.0.1:${base + 8}`;
  const hive = await startPeer('node_modules/@graphql-hive/gateway/dist/bin.js', ['supergraph', supergraph, '--port', String(base + 8), '--host', '127.0.0.1', '--fork', '1'], `${hiveUrl}/healthcheck`, {
    BENCH_SUPERGRAPH: supergraph,
    JWT_SECRET_KEY: SECRET,
    NODE_ENV: 'production',
  });
  targets.push({ label: HIVE, url: hiveUrl, peer: true, pid: hive.pid });
  const first = targets[0]?.url ?? '';
  const login = (await (await fetch(`${first}/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"username":"alice","password":"alice-password"}' })).json()) as { access_token: string };

  const shapeOf = (workload: Workload, target: Target) => ({
    method: 'POST' as const,
    headers: { 'content-type': 'application/json', ...(workload.authenticated ? { authorization: `Bearer ${login.access_token}` } : {}) },
    body: JSON.stringify({ query: target.peer ? workload.peerQuery : workload.query }),
  });
  const post = async (workload: Workload, target: Target) => {
    const shape = shapeOf(workload, target);
    // Parsed and printed again: the servers differ in white space only.
    return JSON.stringify(await (await fetch(`${target.url}/graphql`, { method: 'POST', headers: shape.headers, body: shape.body })).json());
  };
  const summary: string[] = [];
  // The same answers from all, and how many upstream calls one operation makes (cache off).
  for (const workload of WORKLOADS) {
    const answers = await Promise.all(targets.map((target) => post(workload, target)));
    if (new Set(answers).size !== 1 || answers[0]?.includes('"errors"')) throw new Error(`the gateways do not answer ${workload.name} alike: ${answers.map((answer) => answer.slice(0, 200)).join(' / ')}`);
    const before = await upstreamCallsOf(first);
    await post(workload, targets[0] as Target);
    summary.push(`${workload.name}: ${(await upstreamCallsOf(first)) - before} upstream calls per operation without the cache`);
  }
  for (const target of targets) for (const workload of WORKLOADS) await measure('warm-up', `${target.url}/graphql`, shapeOf(workload, target).headers, 1, 32, shapeOf(workload, target));
  const results: Measurement[] = [];
  for (let round = 1; round <= rounds; round++) {
    for (const workload of WORKLOADS) {
      const order = round % 2 === 1 ? targets : [...targets].reverse();
      for (const target of order) {
        const shape = shapeOf(workload, target);
        results.push(await measure(`round ${round}: ${workload.name}, ${target.label}`, `${target.url}/graphql`, shape.headers, seconds, 32, shape, target.pid));
      }
    }
  }
  const medianOf = (workload: Workload, label: string) => median(results.filter((row) => row.label.endsWith(`: ${workload.name}, ${label}`)).map((row) => row.requestsPerSecond));
  for (const workload of WORKLOADS) {
    const off = medianOf(workload, 'gateway, cache off');
    const on = medianOf(workload, 'gateway, cache on');
    const peer = medianOf(workload, HIVE);
    summary.push(
      `${workload.name}: gateway ÷ ${HIVE} ${(off / peer).toFixed(2)}× with the cache off (target ≥ 1.5×), ${(on / peer).toFixed(2)}× with it on${workload.anonymousCatalog ? ' (target ≥ 5×)' : ''}; medians ${Math.round(off)} / ${Math.round(on)} / ${Math.round(peer)} req/s`,
    );
  }
  const afterLoad = targets.map((target) => `${target.label} ${processStats(target.pid)?.rssMb ?? '?'} MB`);
  const rested = await Promise.all(targets.map(async (target) => `${target.label} ${(await restedRssMb(target.pid)) ?? '?'} MB`));
  summary.push(`RSS right after the last round: ${afterLoad.join(', ')}; the least within 60 s of rest after it (V8's memory reducer): ${rested.join(', ')} (target for the gateway ≤ 200 MB)`);
  return { title: `GraphQL: the contract's workloads beside ${HIVE}, 32 connections, ${seconds} s per case`, rounds: results, summary };
}

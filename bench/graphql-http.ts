/**
 * The GraphQL section: the contract's workloads through the gateway (the six reference services and the
 * gateway each in their own process, as `npm start` runs them), with the shared upstream cache off and
 * on, rounds alternating. Each workload's upstream calls per operation come from the gateway's own
 * metrics. (The Hive Gateway peer over a Mesh-composed supergraph is not measured yet.)
 */
import { UPSTREAM_NAMES, UPSTREAMS } from '../gateway/src/upstreams.js';
import { freePortBlock } from '../test/helpers/ports.js';
import { measure, median, processStats, startProcess, type Measurement } from './lib.js';
import type { Section } from './rest.js';

interface Workload {
  readonly name: string;
  readonly query: string;
  readonly authenticated: boolean;
}

const WORKLOADS: readonly Workload[] = [
  { name: 'plans', query: '{ plans { id name } }', authenticated: false },
  { name: '50 movies (id, title)', query: '{ movies(limit: 50) { items { id title } } }', authenticated: false },
  { name: '50 movies with entitlement', query: '{ movies(limit: 50) { items { id title entitlement { canPlay reason } } } }', authenticated: true },
  { name: 'search, movie and channel hits', query: '{ search(q: "the", limit: 20) { total items { kind id title movie { id year } channel { id number } } } }', authenticated: false },
];

/** Upstream calls the gateway made so far, from its metrics. */
async function upstreamCallsOf(gatewayUrl: string): Promise<number> {
  const text = await (await fetch(`${gatewayUrl}/metrics`)).text();
  return [...text.matchAll(/^gateway_upstream_requests_total\{[^}]*\} (\d+)/gm)].reduce((sum, [, value]) => sum + Number(value), 0);
}

export async function graphqlSection(seconds: number, rounds: number): Promise<Section> {
  const base = await freePortBlock(8);
  const env: NodeJS.ProcessEnv = { SERVICES_BASE_PORT: String(base), NODE_ENV: 'production', LOG_LEVEL: 'info', RATE_LIMIT_PER_MINUTE: '0', JWT_SECRET_KEY: 'bench-secret-that-is-long-enough-for-hs256-keys' };
  await Promise.all(UPSTREAM_NAMES.map((name) => startProcess('services/main', [name], env, `http://127.0.0.1:${base + UPSTREAMS[name].portOffset}/health`)));
  const gateways = [
    { label: 'gateway, cache off', url: `http://127.0.0.1:${base + 6}`, env: { ...env, PORT: String(base + 6), UPSTREAM_CACHE_MAX_BYTES: '0' } },
    { label: 'gateway, cache on', url: `http://127.0.0.1:${base + 7}`, env: { ...env, PORT: String(base + 7) } },
  ];
  const running = await Promise.all(gateways.map(async (gateway) => ({ ...gateway, pid: (await startProcess('gateway/src/main', [], gateway.env, `${gateway.url}/health`)).pid })));
  const first = running[0]?.url ?? '';
  const login = (await (await fetch(`${first}/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"username":"alice","password":"alice-password"}' })).json()) as { access_token: string };

  const shapeOf = (workload: Workload) => ({
    method: 'POST' as const,
    headers: { 'content-type': 'application/json', ...(workload.authenticated ? { authorization: `Bearer ${login.access_token}` } : {}) },
    body: JSON.stringify({ query: workload.query }),
  });
  const summary: string[] = [];
  // Same answers from both, and how many upstream calls one operation makes (cache off).
  for (const workload of WORKLOADS) {
    const shape = shapeOf(workload);
    const answers = await Promise.all(running.map(async ({ url }) => (await fetch(`${url}/graphql`, { method: 'POST', headers: shape.headers, body: shape.body })).text()));
    if (new Set(answers).size !== 1 || answers[0]?.includes('"errors"')) throw new Error(`the gateways do not answer ${workload.name} alike: ${answers.map((answer) => answer.slice(0, 200)).join(' / ')}`);
    const before = await upstreamCallsOf(first);
    await fetch(`${first}/graphql`, { method: 'POST', headers: shape.headers, body: shape.body }).then((response) => response.text());
    summary.push(`${workload.name}: ${(await upstreamCallsOf(first)) - before} upstream calls per operation without the cache`);
  }
  for (const { url } of running) for (const workload of WORKLOADS) await measure('warm-up', `${url}/graphql`, shapeOf(workload).headers, 1, 32, shapeOf(workload));
  const results: Measurement[] = [];
  for (let round = 1; round <= rounds; round++) {
    for (const workload of WORKLOADS) {
      const order = round % 2 === 1 ? running : [...running].reverse();
      for (const gateway of order) {
        const shape = shapeOf(workload);
        results.push(await measure(`round ${round}: ${workload.name}, ${gateway.label}`, `${gateway.url}/graphql`, shape.headers, seconds, 32, shape, gateway.pid));
      }
    }
  }
  const medianOf = (label: string) => median(results.filter((row) => row.label.endsWith(`: ${label}`)).map((row) => row.requestsPerSecond));
  for (const workload of WORKLOADS) {
    const off = medianOf(`${workload.name}, gateway, cache off`);
    const on = medianOf(`${workload.name}, gateway, cache on`);
    summary.push(`${workload.name}: median ${Math.round(off)} req/s with the cache off, ${Math.round(on)} with it on (${(on / off).toFixed(2)}×)`);
  }
  summary.push(`RSS after: ${running.map((gateway) => `${gateway.label} ${processStats(gateway.pid)?.rssMb ?? '?'} MB`).join(', ')}`);
  return { title: `GraphQL: the contract's workloads, 32 connections, ${seconds} s per case`, rounds: results, summary };
}

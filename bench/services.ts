/**
 * The reference services under the GraphQL benchmark's workloads (bench/graphql-http.ts), without the
 * gateway: the upstream calls its operations make, each measured alone against the services as
 * `npm start` runs them (each in its own process, their data in the embedded database's). They must
 * never be what limits the gateway: compare with the gateway's req/s in bench/RESULTS.md.
 * Usage: node --import tsx bench/services.ts [-- --seconds 5 --rounds 3]
 */
import { servicePort, type UpstreamName } from '../shared/upstreams.js';
import { freePortBlock } from '../test/helpers/ports.js';
import { finish, machine, measure, median, startServices, stopAfter, table, type Measurement } from './lib.js';

const argument = (name: string, fallback: number) => {
  const index = process.argv.indexOf(`--${name}`);
  return index === -1 ? fallback : Number(process.argv[index + 1]);
};
const seconds = argument('seconds', 5);
const rounds = argument('rounds', 3);
stopAfter((seconds * 10 * rounds + 120) * 1000);

const ALICE = { 'x-user-id': '1', 'x-user-roles': 'user' };
const movieIds = Array.from({ length: 50 }, (_, i) => `m${i + 1}`);
const CALLS: readonly { name: string; service: UpstreamName; path: string; headers?: Record<string, string> }[] = [
  { name: 'plans', service: 'rights', path: '/subscriptions/plans' },
  { name: '50 movies', service: 'ondemand', path: '/ondemand/movies?limit=50' },
  { name: '50 movies by id', service: 'ondemand', path: `/ondemand/movies/batch?ids=${movieIds.join(',')}` },
  { name: '50 entitlements (and the movies batch they ask for)', service: 'rights', path: `/subscriptions/entitlements?contentIds=${movieIds.map((id) => `movie:${id}`).join(',')}`, headers: ALICE },
  { name: 'search (and the two catalogues it reads)', service: 'search', path: '/search/global?q=the&limit=20' },
  { name: '24 channels by id', service: 'livetv', path: `/livetv/channels/batch?ids=${Array.from({ length: 24 }, (_, i) => `c${i + 1}`).join(',')}` },
];

const before = machine();
try {
  const base = await freePortBlock(7);
  const pids = await startServices(base, base + 6, { NODE_ENV: 'production', LOG_LEVEL: 'warn' });
  const url = (call: (typeof CALLS)[number]) => `http://127.0.0.1:${servicePort(call.service, base)}${call.path}`;
  for (const call of CALLS) await measure('warm-up', { url: url(call), headers: call.headers, seconds: 1 });
  const results: Measurement[] = [];
  for (let round = 1; round <= rounds; round++) {
    for (const call of CALLS) results.push(await measure(`round ${round}: ${call.name}`, { url: url(call), headers: call.headers, seconds, pid: pids[call.service] }));
  }
  console.log(`machine before: ${before}\nmachine after: ${machine()}\n`);
  for (const call of CALLS) console.log(`- ${call.name}: median ${median(results.filter((row) => row.label.endsWith(`: ${call.name}`)).map((row) => row.requestsPerSecond))} req/s`);
  console.log(`\n${table(results)}`);
} catch (error) {
  console.error(error);
  process.exitCode = 1;
} finally {
  finish();
}

/**
 * The subscriptions section: GraphQL over SSE subscribers on one gateway replica (the built gateway in a
 * process of its own, over the six reference services, a counting proxy in front of live TV), at two
 * counts side by side. For each count: the gateway's memory per subscriber (its heap after a full GC
 * forced through the inspector, and its resident memory, before and after the subscribers came), then
 * admin edits of the channel every subscriber follows (`PUT /admin/livetv/channels/c1`), each timed
 * from the edit's response to its event's arrival at every subscriber, and the live TV calls the edits
 * cost. The subscribers are raw HTTP streams of this process, parsed here: on the same cores as the
 * gateway, so the delays are the client's (an upper bound).
 */
import { Agent, request, type ClientRequest } from 'node:http';
import { readFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import WebSocket from 'ws';
import { servicePort, UPSTREAMS } from '../shared/upstreams.js';
import { freePortBlock } from '../test/helpers/ports.js';
import { BENCH_SECRET, processStats, startProcess, startServices, verdict } from './lib.js';
import type { Section } from './rest.js';

/** The subscriber counts compared: what the live feed costs upstream must not grow with them. */
const COUNTS = [100, 1000] as const;
/** Edits timed per count. */
const EVENTS = 5;
const CHANNEL = { id: 'c1', number: 101, free: true };
/** Half follow the channel itself, half what is on air on it: an edit of its name reaches both. */
const CHANNEL_UPDATED = 'subscription Watch($id: ID!) { channelUpdated(id: $id) { id name number free nowPlaying { id title end } } }';
const NOW_PLAYING = 'subscription Guide($ids: [ID!]!) { nowPlaying(channelIds: $ids) { channel { id name number } program { id title start end } } }';
/** Subscriptions being opened at once: a TV app population reconnecting, not one burst of a thousand. */
const OPENING_AT_ONCE = 50;
const EVENT_TIMEOUT_MS = 15_000;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The value of a Prometheus metric, summed over its label sets (those holding every one of `labels`, like `service="livetv"`). */
function metric(text: string, name: string, ...labels: string[]): number {
  return [...text.matchAll(new RegExp(`^${name}(?:\\{([^}]*)\\})? (\\S+)$`, 'gm'))]
    .filter(([, set = '']) => labels.every((label) => set.includes(label)))
    .reduce((sum, [, , value]) => sum + Number(value), 0);
}

/** Resident memory in kB (processStats rounds to MB: too coarse for a thousand subscribers' share). */
function residentKb(pid: number): number {
  return Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? Number.NaN);
}

/**
 * A full garbage collection in the gateway, through its inspector (`--inspect`, on loopback), and its
 * heap used after it: garbage left from opening the streams is not counted as what they keep.
 */
async function collectedHeapBytes(inspectorPort: number): Promise<number> {
  const [target] = (await (await fetch(`http://127.0.0.1:${inspectorPort}/json/list`)).json()) as { webSocketDebuggerUrl: string }[];
  if (!target) throw new Error('the gateway has no inspector target');
  const socket = new WebSocket(target.webSocketDebuggerUrl);
  await new Promise((resolve, reject) => socket.once('open', resolve).once('error', reject));
  let id = 0;
  const call = (method: string) =>
    new Promise<Record<string, unknown>>((resolve, reject) => {
      const sent = ++id;
      const onMessage = (data: Buffer) => {
        const message = JSON.parse(data.toString()) as { id?: number; result?: Record<string, unknown>; error?: { message: string } };
        if (message.id !== sent) return;
        socket.off('message', onMessage);
        if (message.error) reject(new Error(`${method}: ${message.error.message}`));
        else resolve(message.result ?? {});
      };
      socket.on('message', onMessage);
      socket.send(JSON.stringify({ id: sent, method }));
    });
  try {
    // Twice: what the first one's finalisers let go is collected by the second.
    await call('HeapProfiler.collectGarbage');
    await call('HeapProfiler.collectGarbage');
    return Number((await call('Runtime.getHeapUsage')).usedSize);
  } finally {
    socket.close();
  }
}

/** Arrival times of each event (by the channel name it carries), and waits for a number of them. */
class Tally {
  private readonly counts = new Map<string, number>();
  private readonly waiters = new Map<string, { count: number; resolve: () => void }[]>();

  arrived(name: string): void {
    const count = (this.counts.get(name) ?? 0) + 1;
    this.counts.set(name, count);
    const waiting = this.waiters.get(name) ?? [];
    for (const waiter of waiting.filter((each) => each.count <= count)) waiter.resolve();
    this.waiters.set(
      name,
      waiting.filter((each) => each.count > count),
    );
  }

  count(name: string): number {
    return this.counts.get(name) ?? 0;
  }

  /** True once `count` arrived, false after `timeoutMs`. */
  until(name: string, count: number, timeoutMs: number): Promise<boolean> {
    if (this.count(name) >= count) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(false), timeoutMs);
      const list = this.waiters.get(name) ?? [];
      list.push({
        count,
        resolve: () => {
          clearTimeout(timer);
          resolve(true);
        },
      });
      this.waiters.set(name, list);
    });
  }
}

interface Subscriber {
  /** When each event came (performance.now()), by the channel name it carries. */
  readonly arrivals: Map<string, number>;
  readonly request: ClientRequest;
  /** Why the stream ended early, if it did. */
  failure?: string;
}

type ChannelEvent = { data?: { channelUpdated?: { name: string }; nowPlaying?: { channel: { name: string } } }; errors?: unknown };

/** One GraphQL over SSE stream (distinct connections mode: a POST with Accept: text/event-stream), its `next` events parsed as they come. */
function subscribe(gatewayUrl: string, agent: Agent, body: string, token: string, tally: Tally): Promise<Subscriber> {
  return new Promise((resolve, reject) => {
    const arrivals = new Map<string, number>();
    const req = request(`${gatewayUrl}/graphql`, { method: 'POST', agent, headers: { 'content-type': 'application/json', accept: 'text/event-stream', ...(token === '' ? {} : { authorization: `Bearer ${token}` }) } }, (res) => {
      if (res.statusCode !== 200) {
        res.resume();
        reject(new Error(`a subscription was answered ${res.statusCode ?? '?'}`));
        return;
      }
      const subscriber: Subscriber = { arrivals, request: req };
      let buffered = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        // One instant for the chunk: what follows is this process's parsing, part of the delay measured.
        const now = performance.now();
        buffered += chunk;
        let end: number;
        while ((end = buffered.indexOf('\n\n')) !== -1) {
          const message = buffered.slice(0, end);
          buffered = buffered.slice(end + 2);
          if (!message.startsWith('event: next')) continue;
          const data = /^data: (.*)$/m.exec(message)?.[1];
          const event = JSON.parse(data ?? '{}') as ChannelEvent;
          const name = event.data?.channelUpdated?.name ?? event.data?.nowPlaying?.channel.name;
          if (name === undefined) subscriber.failure = `an event without a channel: ${message.slice(0, 200)}`;
          else if (!arrivals.has(name)) {
            arrivals.set(name, now);
            tally.arrived(name);
          }
        }
      });
      res.on('close', () => (subscriber.failure ??= 'the stream ended'));
      resolve(subscriber);
    });
    req.on('error', reject);
    req.end(body);
  });
}

/**
 * What a bare node:http server keeps per held event stream (bench/held-streams.ts, its own process with
 * its inspector on `port + 1`): `count` streams opened to it, measured as the gateway is.
 */
async function heldStreamsFloor(port: number, count: number, body: string): Promise<{ streams: number; heapKbPerStream: number; rssKbPerStream: number }> {
  const serverUrl = `http://127.0.0.1:${port}`;
  const server = await startProcess('bench/held-streams.ts', [String(port)], {}, `${serverUrl}/health`, [`--inspect=127.0.0.1:${port + 1}`]);
  const pid = server.pid;
  if (pid === undefined) throw new Error('the held-streams server has no pid');
  const agent = new Agent({ keepAlive: false, maxSockets: Infinity });
  const tally = new Tally();
  const open = async (amount: number) => {
    const opened: Subscriber[] = [];
    for (let next = 0; next < amount; next += OPENING_AT_ONCE) opened.push(...(await Promise.all(Array.from({ length: Math.min(OPENING_AT_ONCE, amount - next) }, () => subscribe(serverUrl, agent, body, '', tally)))));
    return opened;
  };
  // Its code paths run once first, as the gateway's were.
  for (const each of await open(20)) each.request.destroy();
  await sleep(1000);
  const heapBefore = await collectedHeapBytes(port + 1);
  const rssBefore = residentKb(pid);
  const held = await open(count);
  await sleep(2000);
  const heapAfter = await collectedHeapBytes(port + 1);
  const rssAfter = residentKb(pid);
  for (const each of held) each.request.destroy();
  server.kill();
  return { streams: count, heapKbPerStream: (heapAfter - heapBefore) / 1024 / count, rssKbPerStream: (rssAfter - rssBefore) / count };
}

/** The value at quantile `q` of sorted `values` (nearest rank). */
const quantile = (sorted: readonly number[], q: number) => sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))] ?? Number.NaN;

const load = () =>
  loadavg()
    .map((value) => value.toFixed(2))
    .join(' ');

interface Row {
  readonly subscribers: number;
  readonly openSeconds: number;
  readonly heapKbPerSubscriber: number;
  readonly rssKbPerSubscriber: number;
  readonly externalKbPerSubscriber: number;
  /** From each edit's response to its event at each subscriber, sorted; and from the edit's sending, an upper bound that holds its own round trip. */
  readonly delays: number[];
  readonly delaysFromSent: number[];
  readonly editMs: number[];
  readonly missing: number;
  readonly readsWhileOpening: number;
  /** The feed's first read answered from the gateway's upstream cache instead. */
  readonly cacheHitsWhileOpening: number;
  /** Live TV calls during the edits: the edits themselves, and the feed's reads. */
  readonly edits: number;
  readonly reads: number;
  readonly readRoutes: string;
  readonly gatewayCpuMsPerEvent: number;
  readonly clientCpuMsPerEvent: number;
  readonly loadBefore: string;
  readonly loadAfter: string;
}

export async function subscriptionsSection(): Promise<Section> {
  const base = await freePortBlock(12);
  // Ports: 0–5 the reference services; 6 the counting proxy in front of live TV; 7 the gateway; 8 its inspector; 9 a bare node:http server, 10 its inspector; 11 the services' database.
  const url = (offset: number) => `http://127.0.0.1:${base + offset}`;
  // Programmes a day long: a boundary in the window would add a read and an event of its own among the timed ones.
  const env: NodeJS.ProcessEnv = { SERVICES_BASE_PORT: String(base), NODE_ENV: 'production', LOG_LEVEL: 'info', RATE_LIMIT_PER_MINUTE: '0', JWT_SECRET_KEY: BENCH_SECRET, LIVETV_SLOT_SECONDS: '86400' };
  // With their database in a process of its own, in memory: services opening the embedded one each would refuse to share it.
  await startServices(base, base + 11, env);
  await startProcess('bench/counting-proxy.ts', [String(base + 6), `http://127.0.0.1:${servicePort('livetv', base)}`], {}, `${url(6)}/__calls`);
  const gatewayUrl = url(7);
  // Every subscriber comes from 127.0.0.1: the per-client limit (20 by default) would refuse all past the 20th.
  const gatewayEnv = { ...env, PORT: String(base + 7), [UPSTREAMS.livetv.envVar]: url(6), SUBSCRIPTIONS_PER_CLIENT: String(2 * Math.max(...COUNTS)) };
  const gateway = await startProcess('gateway/src/main', [], gatewayEnv, `${gatewayUrl}/health`, [`--inspect=127.0.0.1:${base + 8}`]);
  const pid = gateway.pid;
  if (pid === undefined) throw new Error('the gateway has no pid');

  const login = async (username: string) =>
    ((await (await fetch(`${gatewayUrl}/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username, password: `${username}-password` }) })).json()) as { access_token: string }).access_token;
  // Signed in, as TV apps are: each stream holds an identity and a timer for its token's expiry.
  const userToken = await login('alice');
  const adminToken = await login('admin');
  const metrics = async () => (await fetch(`${gatewayUrl}/metrics`)).text();
  const openStreams = async () => metric(await metrics(), 'gateway_graphql_subscriptions');
  const livetvHits = async () => metric(await metrics(), 'gateway_upstream_cache_lookups_total', 'service="livetv"', 'result="hit"');
  const calls = async () => (await (await fetch(`${url(6)}/__calls`)).json()) as Record<string, number>;
  const feedReads = (before: Record<string, number>, after: Record<string, number>) =>
    Object.entries(after)
      .filter(([route]) => route.startsWith('GET ') && route !== 'GET /health')
      .map(([route, count]) => [route, count - (before[route] ?? 0)] as const)
      .filter(([, count]) => count > 0);
  const until = async (what: string, done: () => Promise<boolean> | boolean, timeoutMs = 60_000) => {
    for (const started = Date.now(); !(await done()); await sleep(50)) if (Date.now() - started > timeoutMs) throw new Error(`not within ${timeoutMs / 1000} s: ${what}`);
  };
  const bodies = [JSON.stringify({ query: CHANNEL_UPDATED, variables: { id: CHANNEL.id } }), JSON.stringify({ query: NOW_PLAYING, variables: { ids: [CHANNEL.id] } })] as const;
  let edit = 0;
  let current = '';
  const editChannel = async (name: string) => {
    const response = await fetch(`${gatewayUrl}/admin/livetv/channels/${CHANNEL.id}`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' },
      body: JSON.stringify({ name, number: CHANNEL.number, free: CHANNEL.free }),
    });
    await response.body?.cancel();
    if (response.status !== 200) throw new Error(`the edit was answered ${response.status}`);
    current = name;
  };

  // Warm-up: the subscription paths compiled, an edit's fan-out run once, before anything is measured.
  {
    const agent = new Agent({ keepAlive: false, maxSockets: Infinity });
    const tally = new Tally();
    const warm = await Promise.all(Array.from({ length: 20 }, (_, i) => subscribe(gatewayUrl, agent, bodies[i % 2] as string, userToken, tally)));
    await editChannel(`Warm-up ${++edit}`);
    await tally.until(`Warm-up ${edit}`, warm.length, EVENT_TIMEOUT_MS);
    for (const each of warm) each.request.destroy();
    await until('the warm-up streams closed', async () => (await openStreams()) === 0);
  }

  const rows: Row[] = [];
  for (const count of COUNTS) {
    const loadBefore = load();
    const agent = new Agent({ keepAlive: false, maxSockets: Infinity });
    const tally = new Tally();
    await sleep(1000);
    const heapBefore = await collectedHeapBytes(base + 8);
    const externalBefore = metric(await metrics(), 'gateway_nodejs_external_memory_bytes');
    const rssBefore = residentKb(pid);
    const callsBeforeOpening = await calls();
    const hitsBeforeOpening = await livetvHits();

    const opening = performance.now();
    const subscribers: Subscriber[] = [];
    for (let next = 0; next < count; ) {
      const batch = Array.from({ length: Math.min(OPENING_AT_ONCE, count - next) }, (_, i) => subscribe(gatewayUrl, agent, bodies[(next + i) % 2] as string, userToken, tally));
      next += batch.length;
      subscribers.push(...(await Promise.all(batch)));
    }
    // Open: counted by the gateway, and every nowPlaying stream has had the programme on air (the channel's name as last edited).
    await until(`${count} streams open`, async () => (await openStreams()) === count && tally.count(current) >= Math.floor(count / 2));
    const openSeconds = (performance.now() - opening) / 1000;
    const readsWhileOpening = feedReads(callsBeforeOpening, await calls()).reduce((sum, [, n]) => sum + n, 0);
    const cacheHitsWhileOpening = (await livetvHits()) - hitsBeforeOpening;

    // Settled: what opening them left behind is collected before their share is taken.
    await sleep(2000);
    const heapAfter = await collectedHeapBytes(base + 8);
    const externalAfter = metric(await metrics(), 'gateway_nodejs_external_memory_bytes');
    const rssAfter = residentKb(pid);

    // One edit untimed: the fan-out's code compiled for this many streams, as in a gateway that has run a while.
    await editChannel(`Bench ${count} warm-up ${++edit}`);
    await tally.until(current, count, EVENT_TIMEOUT_MS);
    await sleep(300);

    const callsBefore = await calls();
    const delays: number[] = [];
    const delaysFromSent: number[] = [];
    const editMs: number[] = [];
    let missing = 0;
    let gatewayCpuMs = 0;
    let clientCpuMs = 0;
    for (let i = 0; i < EVENTS; i++) {
      const name = `Bench ${count} edit ${++edit}`;
      const cpuBefore = processStats(pid)?.cpuMs ?? 0;
      const clientBefore = process.cpuUsage();
      const sent = performance.now();
      await editChannel(name);
      const answered = performance.now();
      editMs.push(answered - sent);
      await tally.until(name, count, EVENT_TIMEOUT_MS);
      gatewayCpuMs += (processStats(pid)?.cpuMs ?? 0) - cpuBefore;
      const client = process.cpuUsage(clientBefore);
      clientCpuMs += (client.user + client.system) / 1000;
      for (const subscriber of subscribers) {
        const arrived = subscriber.arrivals.get(name);
        if (arrived === undefined) missing++;
        else {
          delays.push(arrived - answered);
          delaysFromSent.push(arrived - sent);
        }
      }
      await sleep(300);
    }
    const callsAfter = await calls();
    const reads = feedReads(callsBefore, callsAfter);
    const edits = (callsAfter[`PUT /admin/livetv/channels/${CHANNEL.id}`] ?? 0) - (callsBefore[`PUT /admin/livetv/channels/${CHANNEL.id}`] ?? 0);
    const failures = subscribers.filter((each) => each.failure !== undefined);
    if (failures.length > 0) throw new Error(`${failures.length} of ${count} streams failed, the first: ${failures[0]?.failure ?? ''}`);

    console.log(`subscriptions: ${count} streams, fan-out from the edit's response ${Math.min(...delays).toFixed(0)}–${Math.max(...delays).toFixed(0)} ms`);
    for (const subscriber of subscribers) subscriber.request.destroy();
    await until(`${count} streams closed`, async () => (await openStreams()) === 0);
    rows.push({
      subscribers: count,
      openSeconds,
      heapKbPerSubscriber: (heapAfter - heapBefore) / 1024 / count,
      rssKbPerSubscriber: (rssAfter - rssBefore) / count,
      externalKbPerSubscriber: (externalAfter - externalBefore) / 1024 / count,
      delays: delays.sort((a, b) => a - b),
      delaysFromSent: delaysFromSent.sort((a, b) => a - b),
      editMs,
      missing,
      readsWhileOpening,
      cacheHitsWhileOpening,
      edits,
      reads: reads.reduce((sum, [, n]) => sum + n, 0),
      readRoutes: reads.map(([route, n]) => `${route} ×${n}`).join(', '),
      gatewayCpuMsPerEvent: gatewayCpuMs / EVENTS,
      clientCpuMsPerEvent: clientCpuMs / EVENTS,
      loadBefore,
      loadAfter: load(),
    });
  }

  // For scale: what the runtime alone keeps per held event stream, a bare node:http server holding as many.
  const floor = await heldStreamsFloor(base + 9, Math.max(...COUNTS), bodies[0]);

  const kb = (value: number) => value.toFixed(1);
  const ms = (value: number) => value.toFixed(0);
  const p99 = (values: readonly number[]) => ms(quantile(values, 0.99));
  const largest = rows[rows.length - 1] as Row;
  const smallest = rows[0] as Row;
  const summary = [
    `memory per subscriber at ${largest.subscribers}: ${kb(largest.rssKbPerSubscriber)} KB resident (${verdict(largest.rssKbPerSubscriber, 20, { unit: ' KB', atMost: true, digits: 1 })}), ${kb(largest.heapKbPerSubscriber)} KB of JS heap after a full GC; at ${smallest.subscribers}: ${kb(smallest.rssKbPerSubscriber)} KB resident, ${kb(smallest.heapKbPerSubscriber)} KB heap (resident memory moves by a few MB on its own as V8 commits and releases pages: at ${smallest.subscribers} subscribers its delta is within that; the heap's is the steady figure)`,
    `for scale, a bare node:http server holding ${floor.streams} event streams and nothing else: ${kb(floor.rssKbPerStream)} KB resident, ${kb(floor.heapKbPerStream)} KB heap per stream`,
    `fan-out of one edit to all ${largest.subscribers}: p50 ${ms(quantile(largest.delays, 0.5))} ms, p99 ${p99(largest.delays)} ms (${verdict(quantile(largest.delays, 0.99), 500, { unit: ' ms', atMost: true, digits: 0 })}), max ${ms(quantile(largest.delays, 1))} ms, from the edit's response (p99 ${p99(largest.delaysFromSent)} ms from its sending); to ${smallest.subscribers}: p99 ${p99(smallest.delays)} ms; ${EVENTS} edits each, after one untimed`,
    `live TV calls for ${EVENTS} edits: ${smallest.reads} reads by the feed with ${smallest.subscribers} subscribers, ${largest.reads} with ${largest.subscribers} (target: the same, ${largest.reads <= smallest.reads ? 'met' : `missed by ${largest.reads - smallest.reads} reads`}), besides the edits themselves (${smallest.edits} / ${largest.edits}); opening the streams: ${smallest.readsWhileOpening} / ${largest.readsWhileOpening} reads (${smallest.cacheHitsWhileOpening} / ${largest.cacheHitsWhileOpening} answered from the gateway's upstream cache)`,
    `gateway CPU per edit: ${ms(smallest.gatewayCpuMsPerEvent)} ms with ${smallest.subscribers} subscribers, ${ms(largest.gatewayCpuMsPerEvent)} ms with ${largest.subscribers} (${(((largest.gatewayCpuMsPerEvent - smallest.gatewayCpuMsPerEvent) * 1000) / (largest.subscribers - smallest.subscribers)).toFixed(0)} µs per further subscriber: each event is executed, serialised and written for each stream)`,
    `the subscribers are this process's own HTTP streams, parsed here on the same ${cpus().length} cores as the gateway (${ms(largest.clientCpuMsPerEvent)} ms of client CPU per edit at ${largest.subscribers}): each delay runs to the event parsed at the client, an upper bound of the gateway's`,
    `load average before / after: ${rows.map((row) => `${row.subscribers} subscribers ${row.loadBefore} / ${row.loadAfter}`).join('; ')}`,
  ];
  const lines = [
    '| subscribers | opened in s | resident KB/subscriber | heap KB/subscriber (after GC) | external KB/subscriber | fan-out p50 ms | p99 ms | max ms | p99 ms from the edit sent | events missing | edit answered in ms (median) | live TV reads while opening | live TV calls for the edits | gateway CPU ms per edit | client CPU ms per edit |',
    '| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
    ...rows.map((row) =>
      [
        row.subscribers,
        row.openSeconds.toFixed(1),
        kb(row.rssKbPerSubscriber),
        kb(row.heapKbPerSubscriber),
        kb(row.externalKbPerSubscriber),
        ms(quantile(row.delays, 0.5)),
        p99(row.delays),
        ms(quantile(row.delays, 1)),
        p99(row.delaysFromSent),
        row.missing,
        ms(quantile([...row.editMs].sort((a, b) => a - b), 0.5)),
        row.readsWhileOpening,
        `${row.edits} edits, ${row.reads} reads (${row.readRoutes})`,
        ms(row.gatewayCpuMsPerEvent),
        ms(row.clientCpuMsPerEvent),
      ].join(' | '),
    ).map((line) => `| ${line} |`),
  ];
  return { title: `Subscriptions: ${COUNTS.join(' and ')} GraphQL over SSE subscribers on one replica, ${EVENTS} edits each`, rounds: [], table: lines.join('\n'), summary };
}

import { LRUCache } from 'lru-cache';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { ERROR_KINDS, GRAPHQL_REQUEST_CODES } from '../errors.js';
import { ownGet, type OwnEndpoint } from '../own-endpoints.js';
import { responseStatus, type GatewayPlugin } from '../pipeline/pipeline.js';
import type { Route } from '../routing/router.js';
import type { CacheLayer, UpstreamOutcome } from './attempts.js';
import type { UpstreamName } from '../../../shared/upstreams.js';

/** The caches whose lookups `gateway_cache_lookups_total` counts. */
export type SharedCacheName = 'upstream' | 'graphql_response' | 'persisted_queries';
/** What a command to Redis was for (`use` of gateway_redis_failures_total): a shared cache, the rate limits, the bus, the change events' replay check. */
export type RedisUse = SharedCacheName | 'ratelimit' | 'bus' | 'change-events';

/** How a GraphQL operation ended: data and no error, data with errors, or no data. */
export type GraphQLOutcome = 'success' | 'partial' | 'error';

/**
 * Operation names are client-chosen, so a name earns its own series by use: once seen USES_FOR_A_SERIES
 * times (counted for the CANDIDATE_NAMES most recently seen names), up to MAX_OPERATION_NAMES of them;
 * when all are taken, a name used more often than the least used holder takes that one's place (whose
 * series are removed), counts halved every HALVE_USES_EVERY_MS. A client sending thousands of made-up
 * names takes nothing from the apps' real operations, and one that uses a hundred names twenty times each
 * holds their series only until real traffic outnumbers its recent use; the trusted documents' names have
 * theirs from the start.
 */
const MAX_OPERATION_NAMES = 100;
const USES_FOR_A_SERIES = 20;
/** Every so often the holders' counts are halved: what counts is recent use, not a burst after a deploy. */
const HALVE_USES_EVERY_MS = 10 * 60_000;
const CANDIDATE_NAMES = 10_000;

/** The codes a GraphQL error may carry: the catalogue's and the GraphQL tooling's own. */
const GRAPHQL_ERROR_CODES: ReadonlySet<string> = new Set([...Object.keys(ERROR_KINDS), ...Object.keys(GRAPHQL_REQUEST_CODES)]);

const DURATION_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

/**
 * A count of one label set kept as a plain number and added to its prom-client counter when the metrics
 * are read: prom-client checks and hashes the labels on every increment, and these count every request.
 */
class Tally {
  private pending = 0;

  constructor(private readonly counter: { inc(value: number): void }) {}

  inc(): void {
    this.pending += 1;
  }

  flush(): void {
    if (this.pending === 0) return;
    this.counter.inc(this.pending);
    this.pending = 0;
  }
}

type Label = string | number;

/**
 * What is kept per label set of metrics observed on every request, found through one Map per label:
 * finding it makes no key string. `all` lists everything made, for reading it at a scrape.
 */
class SeriesTable<T> {
  private readonly root = new Map<Label, Map<Label, Map<Label, T>>>();
  readonly all: T[] = [];

  constructor(private readonly create: (a: string, b: string, c: string) => T) {}

  get(a: Label, b: Label, c: Label = ''): T {
    let byB = this.root.get(a);
    if (!byB) this.root.set(a, (byB = new Map()));
    let byC = byB.get(b);
    if (!byC) byB.set(b, (byC = new Map()));
    let series = byC.get(c);
    if (!series) {
      series = this.create(String(a), String(b), String(c));
      byC.set(c, series);
      this.all.push(series);
    }
    return series;
  }
}

interface Series {
  readonly count: Tally;
  readonly duration: { observe(value: number): void };
}

const flushAll = (tallies: readonly Tally[]) => {
  for (const tally of tallies) tally.flush();
};

/**
 * The contract's Prometheus metrics, in a registry of this gateway's own (tests run several gateways in
 * one process). Labels stay low-cardinality: `route` is a route-table prefix, never a raw path.
 */
export class GatewayMetrics {
  readonly registry = new Registry();

  // Observed on every request: counts are added to their counters when the metrics are read (see Tally).
  private readonly requestSeries: SeriesTable<Series> = new SeriesTable((route, method, status) => ({
    count: new Tally(this.httpRequests.labels(route, method, status)),
    duration: this.httpDuration.labels(route, method),
  }));
  private readonly upstreamSeries: SeriesTable<Series> = new SeriesTable((service, method, outcome) => ({
    count: new Tally(this.upstreamRequests.labels(service, method, outcome)),
    duration: this.upstreamDuration.labels(service, method),
  }));
  private readonly lookupTallies: SeriesTable<Tally> = new SeriesTable((service, result) => new Tally(this.cacheLookups.labels(service, result)));
  private readonly sharedLookupTallies: SeriesTable<Tally> = new SeriesTable((cache, layer, result) => new Tally(this.sharedCacheLookups.labels(cache, layer, result)));

  private readonly httpRequests = new Counter({
    name: 'gateway_http_requests_total',
    help: 'Requests the gateway answered, by route (a route-table prefix, /graphql, /health, ... or "unmatched"), method and status.',
    labelNames: ['route', 'method', 'status'] as const,
    registers: [this.registry],
    collect: (): void => flushAll(this.requestSeries.all.map((series) => series.count)),
  });

  private readonly httpDuration = new Histogram({
    name: 'gateway_http_request_duration_seconds',
    help: 'Time from request to the end of the response.',
    labelNames: ['route', 'method'] as const,
    buckets: DURATION_BUCKETS,
    registers: [this.registry],
  });

  private readonly upstreamRequests = new Counter({
    name: 'gateway_upstream_requests_total',
    help: 'Calls the gateway made to an upstream, REST and GraphQL alike, by service, method and status (or timeout / unreachable / truncated / too_large / aborted / error).',
    labelNames: ['service', 'method', 'status'] as const,
    registers: [this.registry],
    collect: (): void => flushAll(this.upstreamSeries.all.map((series) => series.count)),
  });

  private readonly upstreamDuration = new Histogram({
    name: 'gateway_upstream_request_duration_seconds',
    help: 'Time from sending a request to an upstream to its response headers.',
    labelNames: ['service', 'method'] as const,
    buckets: DURATION_BUCKETS,
    registers: [this.registry],
  });

  readonly rateLimited = new Counter({
    name: 'gateway_rate_limited_total',
    help: 'Requests refused with 429 by the rate limiter.',
    registers: [this.registry],
  });

  private readonly circuitState = new Gauge({
    name: 'gateway_upstream_circuit_state',
    help: "Each upstream's circuit breaker: 0 closed, 1 half-open, 2 open.",
    labelNames: ['service'] as const,
    registers: [this.registry],
  });

  private readonly cacheLookups = new Counter({
    name: 'gateway_upstream_cache_lookups_total',
    help: 'Lookups in the shared cache of upstream answers (GET and HEAD calls), by service: hit (stored, fresh or to revalidate) or miss.',
    labelNames: ['service', 'result'] as const,
    registers: [this.registry],
    collect: (): void => flushAll(this.lookupTallies.all),
  });

  private readonly coalesced = new Counter({
    name: 'gateway_upstream_coalesced_total',
    help: 'GET and HEAD calls that joined an identical call in flight to the same upstream instead of making their own, by service.',
    labelNames: ['service'] as const,
    registers: [this.registry],
  });

  private readonly graphqlOperations = new Counter({
    name: 'gateway_graphql_operations_total',
    help: 'GraphQL operations answered, by operation name (anonymous, invalid, or other while a name has not earned a series by use), type and outcome (success, partial, error).',
    labelNames: ['operation', 'type', 'outcome'] as const,
    registers: [this.registry],
  });

  private readonly graphqlErrors = new Counter({
    name: 'gateway_graphql_errors_total',
    help: 'Errors in GraphQL responses, by extensions.code (OTHER for a code outside the catalogue).',
    labelNames: ['code'] as const,
    registers: [this.registry],
  });

  private readonly rateLimitStoreErrors = new Counter({
    name: 'gateway_rate_limit_store_errors_total',
    help: 'Calls to the rate limit store (Redis) that failed: the request was let through unlimited.',
    labelNames: ['limiter'] as const,
    registers: [this.registry],
  });

  private readonly rateLimitStoreUp = new Gauge({
    name: 'gateway_rate_limit_store_up',
    help: 'Whether the rate limit store (Redis) answers: 1 yes, 0 no (rate limiting is off meanwhile).',
    labelNames: ['limiter'] as const,
    registers: [this.registry],
  });

  private readonly sharedCacheLookups = new Counter({
    name: 'gateway_cache_lookups_total',
    help: 'Lookups in the gateway\'s caches, by cache (upstream, graphql_response, persisted_queries), layer (local: this process; shared: Redis, with REDIS_URL) and result (hit or miss).',
    labelNames: ['cache', 'layer', 'result'] as const,
    registers: [this.registry],
    collect: (): void => flushAll(this.sharedLookupTallies.all),
  });

  private readonly redisUp = new Gauge({
    name: 'gateway_redis_up',
    help: 'With REDIS_URL: whether each of the gateway\'s Redis connections is ready, 1 yes, 0 no (commands: rate limits, caches, persisted queries; bus: the invalidations).',
    labelNames: ['connection'] as const,
    registers: [this.registry],
  });

  private readonly redisFailures = new Counter({
    name: 'gateway_redis_failures_total',
    help: 'Commands to Redis that failed or did not answer within REDIS_COMMAND_TIMEOUT_MS, by use: the request went on without (to the upstream, unlimited).',
    labelNames: ['use'] as const,
    registers: [this.registry],
  });

  private readonly busMessages = new Counter({
    name: 'gateway_cache_bus_messages_total',
    help: 'Invalidations on the bus that every replica hears, published by this one or received from another.',
    labelNames: ['direction'] as const,
    registers: [this.registry],
  });

  private readonly busDelay = new Histogram({
    name: 'gateway_cache_bus_delay_seconds',
    help: 'Time from an invalidation published by another replica to its arrival here (the replicas\' clocks).',
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1],
    registers: [this.registry],
  });

  private readonly busListening = new Gauge({
    name: 'gateway_cache_bus_listening',
    help: 'Whether this replica hears the invalidation bus, 1 yes, 0 no: without it, no cached answer is used (always 1 without REDIS_URL).',
    registers: [this.registry],
  });

  private readonly subscriptions = new Gauge({
    name: 'gateway_graphql_subscriptions',
    help: 'GraphQL subscriptions open on this replica, by transport (sse: GraphQL over SSE, ws: graphql-ws).',
    labelNames: ['transport'] as const,
    registers: [this.registry],
  });

  private readonly subscriptionEvents = new Counter({
    name: 'gateway_graphql_subscription_events_total',
    help: 'Events delivered to GraphQL subscriptions, by transport.',
    labelNames: ['transport'] as const,
    registers: [this.registry],
  });

  /** `now`: the clock of the operation names' counts (epoch ms), for tests that move time themselves. */
  constructor(private readonly now: () => number = Date.now) {
    collectDefaultMetrics({ register: this.registry, prefix: 'gateway_' });
    // Gauges named like counters; each is the sum of its by-type gauge (gateway_nodejs_active_handles…).
    for (const name of ['active_handles_total', 'active_requests_total', 'active_resources_total']) this.registry.removeSingleMetric(`gateway_nodejs_${name}`);
  }

  observeRequest(route: string, method: string, status: number, seconds: number): void {
    const series = this.requestSeries.get(route, method, status);
    series.count.inc();
    series.duration.observe(seconds);
  }

  observeUpstream(service: UpstreamName, method: string, outcome: UpstreamOutcome, seconds: number): void {
    const series = this.upstreamSeries.get(service, method, outcome);
    series.count.inc();
    series.duration.observe(seconds);
  }

  // Every upstream GET is looked up in the cache: counted as requests are.
  observeCacheLookup(service: UpstreamName, result: 'hit' | 'miss'): void {
    this.lookupTallies.get(service, result).inc();
  }

  observeCoalesced(service: UpstreamName): void {
    this.coalesced.labels(service).inc();
  }

  setCircuitState(service: UpstreamName, state: number): void {
    this.circuitState.labels(service).set(state);
  }

  private readonly reservedNames = new Set<string>();
  /** Names holding a series: how often each was used, and the `type outcome` pairs of its series. */
  private readonly earnedNames = new Map<string, { uses: number; readonly series: Set<string> }>();
  private readonly candidateUses = new LRUCache<string, number>({ max: CANDIDATE_NAMES });
  private usesHalvedAt: number | undefined;

  /** Names with a series of their own from the start (the trusted documents'). */
  reserveOperationNames(names: Iterable<string>): void {
    for (const name of names) this.reservedNames.add(name);
  }

  /** Counts a GraphQL operation and the codes of its errors; see USES_FOR_A_SERIES for which names are labels. */
  observeGraphQLOperation(name: string | undefined, type: string, outcome: GraphQLOutcome, errorCodes: readonly string[]): void {
    const label = this.operationLabel(name);
    this.earnedNames.get(label)?.series.add(`${type} ${outcome}`);
    this.graphqlOperations.labels(label, type, outcome).inc();
    for (const code of errorCodes) this.graphqlErrors.labels(GRAPHQL_ERROR_CODES.has(code) ? code : 'OTHER').inc();
  }

  private operationLabel(name: string | undefined): string {
    this.halveUsesWhenDue();
    if (name === undefined) return 'invalid';
    if (name === '') return 'anonymous';
    if (this.reservedNames.has(name)) return name;
    const earned = this.earnedNames.get(name);
    if (earned) {
      earned.uses += 1;
      return name;
    }
    const uses = (this.candidateUses.get(name) ?? 0) + 1;
    if (uses >= USES_FOR_A_SERIES && this.makeRoomFor(uses)) {
      this.candidateUses.delete(name);
      this.earnedNames.set(name, { uses, series: new Set() });
      return name;
    }
    this.candidateUses.set(name, uses);
    return 'other';
  }

  private halveUsesWhenDue(): void {
    const now = this.now();
    this.usesHalvedAt ??= now;
    if (now - this.usesHalvedAt < HALVE_USES_EVERY_MS) return;
    this.usesHalvedAt = now;
    for (const held of this.earnedNames.values()) held.uses = Math.floor(held.uses / 2);
  }

  /** Whether a name used `uses` times may hold a series: a free place, or the least used holder's if it was used less. */
  private makeRoomFor(uses: number): boolean {
    if (this.earnedNames.size < MAX_OPERATION_NAMES) return true;
    let weakest: [name: string, held: { uses: number; readonly series: Set<string> }] | undefined;
    for (const entry of this.earnedNames) if (!weakest || entry[1].uses < weakest[1].uses) weakest = entry;
    if (!weakest || weakest[1].uses >= uses) return false;
    const [name, held] = weakest;
    for (const pair of held.series) this.graphqlOperations.remove(name, ...(pair.split(' ') as [string, string]));
    this.earnedNames.delete(name);
    return true;
  }

  /** A call to the rate limit store of `limiter` failed (the request was let through). */
  rateLimitStoreFailed(limiter: string, count = 1): void {
    this.rateLimitStoreErrors.labels(limiter).inc(count);
  }

  setRateLimitStoreUp(limiter: string, up: boolean): void {
    this.rateLimitStoreUp.labels(limiter).set(up ? 1 : 0);
  }

  observeSharedCacheLookup(cache: SharedCacheName, layer: CacheLayer, result: 'hit' | 'miss'): void {
    this.sharedLookupTallies.get(cache, layer, result).inc();
  }

  /** `connection`: one of the Redis connection owner's (cluster/redis.ts). */
  setRedisUp(connection: string, up: boolean): void {
    this.redisUp.labels(connection).set(up ? 1 : 0);
  }

  redisFailed(use: RedisUse): void {
    this.redisFailures.labels(use).inc();
  }

  observeBusMessage(direction: 'published' | 'received', delaySeconds?: number): void {
    this.busMessages.labels(direction).inc();
    if (delaySeconds !== undefined) this.busDelay.observe(Math.max(0, delaySeconds));
  }

  setBusListening(listening: boolean): void {
    this.busListening.set(listening ? 1 : 0);
  }

  subscriptionOpened(transport: 'sse' | 'ws'): void {
    this.subscriptions.labels(transport).inc();
  }

  subscriptionClosed(transport: 'sse' | 'ws'): void {
    this.subscriptions.labels(transport).dec();
  }

  subscriptionEvent(transport: 'sse' | 'ws'): void {
    this.subscriptionEvents.labels(transport).inc();
  }

  /** The Prometheus text exposition. */
  async render(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }
}

/**
 * The `route` label of a request: a route-table prefix, an own endpoint's path, /graphql, or
 * "unmatched" (never a raw path: the label set stays small). Only the metrics set it.
 */
export function routeLabel(route: Route | undefined): string {
  if (route === undefined) return 'unmatched';
  if (route.face === 'own') return route.path;
  if (route.face === 'graphql') return '/graphql';
  return route.rule?.prefix ?? 'unmatched';
}

/** Counts and times every request once its response is over, whichever phase answered it (499: the client left first). */
export function metricsPlugin(metrics: GatewayMetrics): GatewayPlugin {
  return {
    name: 'metrics',
    onResponse: ({ req, res, state, started }) => metrics.observeRequest(routeLabel(state.peek('route')), req.method ?? 'GET', responseStatus(res), secondsSince(started)),
  };
}

/** GET /metrics: the Prometheus scrape. */
export function metricsEndpoint(metrics: GatewayMetrics): OwnEndpoint {
  return {
    path: '/metrics',
    openapi: ownGet('The Prometheus scrape', { '200': { description: 'Every metric, in the Prometheus text format', content: { 'text/plain': { schema: { type: 'string' } } } } }),
    async handle({ res }) {
      const { contentType, body } = await metrics.render();
      res.writeHead(200, { 'content-type': contentType, 'cache-control': 'no-store' }).end(body);
    },
  };
}

/** Seconds since a `process.hrtime.bigint()` reading. */
export function secondsSince(start: bigint): number {
  return Number(process.hrtime.bigint() - start) / 1e9;
}

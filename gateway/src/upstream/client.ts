import { errors as undiciErrors, Pool, type Dispatcher } from 'undici';
import type { GatewayConfig } from '../config.js';
import type { Logger } from '../observability/logger.js';
import type { GatewayPlugin } from '../pipeline/pipeline.js';
import type { GatewayMetrics } from '../observability/metrics.js';
import { UPSTREAM_NAMES, UPSTREAMS, type UpstreamName, type UpstreamUrls } from '../../../shared/upstreams.js';
import { CircuitBreaker, CIRCUIT_STATES } from './breaker.js';
import type { CallGuard, CallRelease, DispatchWithCall, UpstreamCall } from './call.js';
import type { GatewayError } from '../errors.js';
import { upstreamFailure, upstreamHttpFailure } from './failures.js';
import { changesInterceptor } from './interceptors/changes.js';
import { cacheInterceptors, MAX_ENTRIES, UpstreamCache } from './cache.js';
import { circuitBreakerInterceptor } from './interceptors/circuit-breaker.js';
import { coalescingInterceptor } from './interceptors/coalescing.js';
import { forwardingInterceptor } from './interceptors/forwarding.js';
import { PassThroughHandler, type Controller, type Headers } from './interceptors/handler.js';
import { observeInterceptor } from './interceptors/observe.js';
import { pathSafetyInterceptor } from './interceptors/path-safety.js';
import { redirectsInterceptor } from './interceptors/redirects.js';
import { responseLimitInterceptor } from './interceptors/response-limit.js';
import { retryInterceptor } from './interceptors/retry.js';
import { statusInterceptor } from './interceptors/status.js';
import { timeoutInterceptor } from './interceptors/timeout.js';
import { tracingInterceptor } from './interceptors/tracing.js';
import type { Tracing } from '../../../shared/tracing.js';
import { sharedLayer, type Invalidations, type SharedState } from '../cluster/index.js';

export interface UpstreamClientOptions {
  readonly upstreams: UpstreamUrls;
  readonly timeoutMs: number;
  readonly breaker: { readonly failureThreshold: number; readonly openMs: number };
  readonly metrics: GatewayMetrics;
  readonly logger: Logger;
  /** The breakers' clock (epoch ms): Date.now unless a test moves time itself. */
  readonly now?: () => number;
  /** Rules some calls must pass first (CREDENTIAL_CALLS_PER_CLIENT, REGISTRATIONS_PER_HOUR), in order. */
  readonly guards?: readonly CallGuard[];
  /** A client span for every call made within a traced request, when tracing is on. */
  readonly tracing?: Tracing;
  /**
   * The shared cache of upstream answers (its largest entry is also the most a shared streamed answer
   * holds for a caller that lags behind) and whether identical GETs in flight are coalesced.
   */
  readonly cache: { readonly maxBytes: number; readonly maxEntryBytes: number; readonly coalescing: boolean };
  /** What the replicas share: the invalidation bus, and the cache's layer in Redis (with REDIS_URL). */
  readonly shared: SharedState;
}

export type UpstreamResponse = Dispatcher.ResponseData;

/**
 * What the face's handler holds of a call whose guards took a slot (a password check in flight). Leaving
 * before the upstream has answered detaches the face — it hears the call failed at once, as from an
 * abort — while the call runs on to the upstream's status line, since the work it started there (a
 * password hash) goes on whatever the client does; the slot is given back only then (or on the call's
 * own failure or timeout), and the call is then cut. Once the answer has started, leaving aborts it as
 * any call. (`request()` keeps the same rule with `untilAborted`: undici's request API takes no handler.)
 */
class DetachableHandler extends PassThroughHandler implements Controller {
  private upstream: Controller | undefined;
  private detachedBy: Error | undefined;
  private answered = false;

  constructor(
    next: Dispatcher.DispatchHandler,
    private readonly release: CallRelease,
  ) {
    super(next);
  }

  get aborted(): boolean {
    return this.detachedBy !== undefined || (this.upstream?.aborted ?? false);
  }

  get paused(): boolean {
    return this.upstream?.paused ?? false;
  }

  get reason(): Error | null {
    return this.detachedBy ?? this.upstream?.reason ?? null;
  }

  abort(reason: Error): void {
    if (this.detachedBy) return;
    if (this.answered && this.upstream) {
      this.upstream.abort(reason);
      return;
    }
    this.detachedBy = reason;
    super.onResponseError(this, reason);
  }

  pause(): void {
    this.upstream?.pause();
  }

  resume(): void {
    this.upstream?.resume();
  }

  override onRequestStart(controller: Controller, context: unknown): void {
    this.upstream = controller;
    // A face that left before the call started has been told already.
    if (!this.detachedBy) super.onRequestStart(this, context);
  }

  override onResponseStart(controller: Controller, statusCode: number, headers: Headers, statusMessage?: string): void {
    this.answered = true;
    this.release();
    if (this.detachedBy) controller.abort(this.detachedBy);
    else super.onResponseStart(this, statusCode, headers, statusMessage);
  }

  override onResponseData(controller: Controller, chunk: Buffer): void {
    if (!this.detachedBy) super.onResponseData(this, chunk);
  }

  override onResponseEnd(controller: Controller, trailers: Headers): void {
    if (!this.detachedBy) super.onResponseEnd(this, trailers);
  }

  override onResponseError(controller: Controller, error: Error): void {
    this.release();
    if (!this.detachedBy) super.onResponseError(this, error);
  }
}

/** The response, or a rejection as from an abort once `signal` fires first (the response is then discarded when it comes). */
/** An upstream's generation as this replica knows it (NaN while a change heard on the bus is being read): what a call made after a change does not share with one made before it. */
function generationOf(invalidations: Invalidations, upstream: UpstreamName): string {
  const { epoch, upstreams } = invalidations.generations();
  return `${epoch} ${upstreams[upstream]}`;
}

function untilAborted(sent: Promise<UpstreamResponse>, signal: AbortSignal): Promise<UpstreamResponse> {
  return new Promise((resolve, reject) => {
    const leave = () => {
      reject(new undiciErrors.RequestAbortedError('the client went away'));
      sent.then((response) => response.body.dump(), () => undefined).catch(() => undefined);
    };
    if (signal.aborted) return leave();
    signal.addEventListener('abort', leave, { once: true });
    sent.then(resolve, reject).finally(() => signal.removeEventListener('abort', leave));
  });
}

/** A call refused before it started: its handler hears it as an error with no controller. */
function refuse(handler: Dispatcher.DispatchHandler, error: unknown): void {
  handler.onResponseError?.(undefined as unknown as Dispatcher.DispatchController, error as Error);
}

const NO_GUARDS: readonly CallGuard[] = [];

/** How much of an upstream's error body is read to find its `detail`; the rest is discarded. */
export const MAX_ERROR_BODY_BYTES = 64 * 1024;

async function readCapped(body: UpstreamResponse['body'], limit: number): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body as AsyncIterable<Buffer>) {
    chunks.push(chunk);
    size += chunk.length;
    if (size >= limit) break;
  }
  // Leaving the loop early destroys the stream: the rest is never read.
  return Buffer.concat(chunks).toString('utf8').slice(0, limit);
}

interface Upstream {
  readonly dispatcher: Dispatcher;
  /** The composed chain's entry, read once: the dispatcher compose() returns is a Proxy, a trap on every read. */
  readonly dispatch: Dispatcher['dispatch'];
  readonly pool: Pool;
  readonly origin: string;
  /** The upstream URL's path, put in front of every call's path. */
  readonly basePath: string;
}

/**
 * The one way the gateway calls its upstreams, for the REST face, the GraphQL face (as Mesh's fetch)
 * and readiness checks. One keep-alive pool per upstream, composed with undici interceptors, each one
 * concern, outermost first: path safety, forwarding headers, coalescing of identical GETs in flight,
 * the shared cache (and the invalidation after a change), circuit breaker, one retry, redirect policy,
 * valid status, response body cap, a span per attempt (when tracing), metrics and access-log records,
 * timeouts. Failures come out as the catalogue's kinds.
 */
export class UpstreamClient {
  private readonly upstreams: Readonly<Record<UpstreamName, Upstream>>;

  /** The shared cache of upstream answers; undefined when UPSTREAM_CACHE_MAX_BYTES is 0. */
  readonly cache: UpstreamCache | undefined;

  constructor(private readonly options: UpstreamClientOptions) {
    const byOrigin = new Map(UPSTREAM_NAMES.map((name) => [new URL(options.upstreams[name]).origin, name]));
    const sharedEntries = options.cache.maxBytes > 0 ? options.shared.entries('upstream', { maxBytes: options.cache.maxBytes, maxEntryBytes: options.cache.maxEntryBytes, maxEntries: MAX_ENTRIES }) : undefined;
    const cache =
      options.cache.maxBytes > 0
        ? new UpstreamCache({
            maxBytes: options.cache.maxBytes,
            maxEntryBytes: options.cache.maxEntryBytes,
            upstreamOf: (origin) => byOrigin.get(origin),
            invalidations: options.shared.invalidations,
            ...sharedLayer(sharedEntries),
            onLookup: (service, layer, result) => {
              // The per-service count is of answers found in either layer, or in neither.
              if (result === 'hit' || layer === 'shared' || !sharedEntries) options.metrics.observeCacheLookup(service, result);
              options.metrics.observeSharedCacheLookup('upstream', layer, result);
            },
          })
        : undefined;
    this.cache = cache;
    const entries = UPSTREAM_NAMES.map((name): [UpstreamName, Upstream] => {
      const url = new URL(options.upstreams[name]);
      const pool = new Pool(url.origin, {
        connections: 256,
        keepAliveTimeout: 30_000,
        keepAliveMaxTimeout: 60_000,
        headersTimeout: options.timeoutMs,
        bodyTimeout: options.timeoutMs,
        connect: { timeout: Math.min(5000, options.timeoutMs) },
      });
      const breaker = new CircuitBreaker({
        ...options.breaker,
        ...(options.now ? { now: options.now } : {}),
        onStateChange: (state, requestId) => {
          options.metrics.setCircuitState(name, CIRCUIT_STATES[state]);
          options.logger[state === 'open' ? 'warn' : 'info']({ upstream: name, circuit: state, ...(requestId ? { requestId } : {}) }, `circuit ${state} for the ${UPSTREAMS[name].title} service`);
        },
      });
      options.metrics.setCircuitState(name, CIRCUIT_STATES.closed);
      // compose() wraps in order: the first interceptor is nearest the pool, the last is met first.
      // Coalescing sits high, right under the headers it compares: the calls it joins are one call for
      // everything below (one cache lookup, one verdict of the breaker, one retry, counted, traced and
      // timed once), and a call refused below (an open circuit) throws before anyone can join it.
      const dispatcher = pool.compose(
        timeoutInterceptor(options.timeoutMs),
        observeInterceptor(options, name),
        ...(options.tracing ? [tracingInterceptor(options.tracing, name, url)] : []),
        responseLimitInterceptor(),
        statusInterceptor(),
        redirectsInterceptor(),
        retryInterceptor(),
        circuitBreakerInterceptor(breaker),
        ...(cache ? cacheInterceptors(cache) : []),
        changesInterceptor(name, options.shared.invalidations),
        ...(options.cache.coalescing ? [coalescingInterceptor(name, options.cache.maxEntryBytes, () => options.metrics.observeCoalesced(name), () => generationOf(options.shared.invalidations, name))] : []),
        forwardingInterceptor(),
        pathSafetyInterceptor(),
      );
      return [name, { dispatcher, dispatch: dispatcher.dispatch, pool, origin: url.origin, basePath: url.pathname.replace(/\/$/, '') }];
    });
    this.upstreams = Object.fromEntries(entries) as Record<UpstreamName, Upstream>;
  }

  /** undici's options for a call: its upstream's origin, the path under the upstream's base, the call itself for the interceptors. */
  private optionsFor(upstream: UpstreamName, call: UpstreamCall): DispatchWithCall & Dispatcher.RequestOptions {
    const { origin, basePath } = this.upstreams[upstream];
    const options: DispatchWithCall & Dispatcher.RequestOptions = {
      call,
      origin,
      method: call.method as Dispatcher.HttpMethod,
      path: call.query ? `${basePath}${call.path}?${call.query}` : basePath + call.path,
      body: call.body ?? null,
    };
    if (call.signal) options.signal = call.signal;
    return options;
  }

  /** The guards a call must pass; none for almost every call, which then goes out at once (no list made for it). */
  private guardsFor(upstream: UpstreamName, call: UpstreamCall): readonly CallGuard[] {
    const guards = this.options.guards ?? NO_GUARDS;
    for (const guard of guards) if (guard.applies(upstream, call)) return guards.filter((one) => one.applies(upstream, call));
    return NO_GUARDS;
  }

  /**
   * Passes the call through its guards in order, and answers what gives back all they hold; a refusal
   * gives back what the guards before it took, and is the error.
   */
  private async admit(guards: readonly CallGuard[], call: UpstreamCall): Promise<CallRelease | undefined> {
    const held: CallRelease[] = [];
    const release = () => {
      for (const give of held.splice(0)) give();
    };
    try {
      for (const guard of guards) {
        const taken = await guard.check(call);
        if (taken) held.push(taken);
      }
    } catch (error) {
      release();
      throw error;
    }
    return held.length > 0 ? release : undefined;
  }

  /**
   * Makes the call and answers the upstream's response whatever its status (headers arrived; the body
   * streams). Fails with a GatewayError when there is no usable response.
   */
  async request(upstream: UpstreamName, call: UpstreamCall): Promise<UpstreamResponse> {
    const release = await this.admit(this.guardsFor(upstream, call), call);
    // A call holding a slot runs on to the upstream's answer when its client leaves (see DetachableHandler).
    const sent = this.upstreams[upstream].dispatcher.request(this.optionsFor(upstream, release ? { ...call, signal: undefined } : call));
    const answered = release ? sent.finally(release) : sent;
    try {
      return await (release && call.signal ? untilAborted(answered, call.signal) : answered);
    } catch (error) {
      throw upstreamFailure(error, upstream);
    }
  }

  /**
   * Makes the call with `handler` receiving the answer as it arrives (undici's handler interface), for a
   * face that relays it as it streams. A call refused before it starts reaches `onResponseError` too.
   */
  dispatch(upstream: UpstreamName, call: UpstreamCall, handler: Dispatcher.DispatchHandler): void {
    const guards = this.guardsFor(upstream, call);
    if (guards.length === 0) this.send(upstream, call, handler);
    else
      this.admit(guards, call).then(
        (release) => this.send(upstream, call, release ? new DetachableHandler(handler, release) : handler),
        (error: unknown) => refuse(handler, error),
      );
  }

  private send(upstream: UpstreamName, call: UpstreamCall, handler: Dispatcher.DispatchHandler): void {
    try {
      this.upstreams[upstream].dispatch(this.optionsFor(upstream, call), handler);
    } catch (error) {
      refuse(handler, error);
    }
  }

  /**
   * An upstream's error status and (up to 64 KiB of) its body as the catalogue's error. Upstream text
   * the client may not see is logged with the request id.
   */
  httpFailure(upstream: UpstreamName, call: UpstreamCall, status: number, headers: Record<string, string | string[] | undefined>, text: string): GatewayError {
    const { error, withheld } = upstreamHttpFailure(upstream, status, text.slice(0, MAX_ERROR_BODY_BYTES), headers);
    if (withheld !== undefined && withheld.trim() !== '') {
      this.options.logger.warn({ requestId: call.caller.requestId, upstream, status, upstreamBody: withheld.slice(0, 2000) }, 'upstream error text withheld from the client');
    }
    return error;
  }

  /** The error of a response read with `request` whose status is 400 or more. */
  async errorOf(upstream: UpstreamName, call: UpstreamCall, response: UpstreamResponse): Promise<GatewayError> {
    const text = await readCapped(response.body, MAX_ERROR_BODY_BYTES).catch(() => '');
    return this.httpFailure(upstream, call, response.statusCode, response.headers, text);
  }

  /** The body of a response read whole: failures (too large, broken, too slow) as the catalogue's kinds. */
  async text(upstream: UpstreamName, response: UpstreamResponse): Promise<string> {
    try {
      return await response.body.text();
    } catch (error) {
      throw upstreamFailure(error, upstream, true);
    }
  }

  async close(): Promise<void> {
    await Promise.all(UPSTREAM_NAMES.map((name) => this.upstreams[name].pool.close()));
  }

  /** Whether every pool is closed (after close()). */
  get closed(): boolean {
    return UPSTREAM_NAMES.every((name) => this.upstreams[name].pool.closed);
  }
}

/**
 * The upstream client as a capability of the gateway, configured from the gateway's settings: the client,
 * and its plugin, which has no phase of its own and closes the pools once those that call them are closed.
 */
export function upstreamClient(
  config: GatewayConfig,
  services: { readonly metrics: GatewayMetrics; readonly logger: Logger; readonly shared: SharedState; readonly guards: readonly CallGuard[]; readonly now?: () => number; readonly tracing?: Tracing },
): { readonly client: UpstreamClient; readonly plugin: GatewayPlugin } {
  const client = new UpstreamClient({ upstreams: config.upstreams, timeoutMs: config.upstreamTimeoutMs, breaker: config.breaker, cache: config.upstreamCache, ...services });
  return { client, plugin: { name: 'upstream-client', onClose: () => client.close() } };
}

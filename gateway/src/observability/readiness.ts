import { GatewayError } from '../errors.js';
import type { Lifecycle } from '../lifecycle.js';
import { ownGet, sendJson, type OwnEndpoint } from '../own-endpoints.js';
import { problemResponse } from '../openapi.js';
import type { UpstreamClient } from '../upstream/client.js';
import type { SharedState } from '../cluster/index.js';
import { UPSTREAM_NAMES, type UpstreamName } from '../../../shared/upstreams.js';

const UPSTREAM_HEALTH = ['ok', 'unhealthy', 'unreachable'] as const;
export type UpstreamHealth = (typeof UPSTREAM_HEALTH)[number];

export interface UpstreamsHealth {
  readonly services: Readonly<Record<UpstreamName, UpstreamHealth>>;
  readonly failing: readonly UpstreamName[];
}

const HEALTH_TIMEOUT_MS = 2000;
/** How long one round of upstream health checks stands for every /ready in between. */
const CACHE_MS = 2000;

/**
 * The upstreams' own health checks, asked through the upstream client, all at once, at most one round
 * every 2 s whatever the number of /ready calls (a probe flood never reaches the upstreams).
 */
export class UpstreamHealthCheck {
  private last: { readonly at: number; readonly result: Promise<UpstreamsHealth> } | undefined;

  constructor(
    private readonly client: UpstreamClient,
    private readonly now: () => number = Date.now,
  ) {}

  current(requestId: string): Promise<UpstreamsHealth> {
    if (this.last && this.now() - this.last.at < CACHE_MS) return this.last.result;
    const result = this.check(requestId);
    this.last = { at: this.now(), result };
    return result;
  }

  private async check(requestId: string): Promise<UpstreamsHealth> {
    const caller = { requestId };
    const healthOf = async (name: UpstreamName): Promise<UpstreamHealth> => {
      try {
        const response = await this.client.request(name, { method: 'GET', path: '/health', caller, timeoutMs: HEALTH_TIMEOUT_MS, deadline: true, redirects: 'refuse' });
        await response.body.dump();
        return response.statusCode === 200 ? 'ok' : 'unhealthy';
      } catch {
        return 'unreachable';
      }
    };
    const results = await Promise.all(UPSTREAM_NAMES.map(async (name) => [name, await healthOf(name)] as const));
    return { services: Object.fromEntries(results) as Record<UpstreamName, UpstreamHealth>, failing: results.filter(([, health]) => health !== 'ok').map(([name]) => name) };
  }
}

export interface ReadinessOptions {
  readonly lifecycle: Lifecycle;
  readonly upstreams: UpstreamHealthCheck;
  /** READY_REQUIRES_ALL_UPSTREAMS: one upstream down makes the instance not ready (else: degraded, 200). */
  readonly requireAllUpstreams: boolean;
  /** Whether to name the upstreams and their health (not on a public port when ADMIN_PORT is set). */
  readonly details: boolean;
  /** What the replicas share: Redis's connections and whether the invalidation bus is heard (details only). */
  readonly shared: Pick<SharedState, 'details'>;
}

/**
 * GET /ready: whether this instance can serve. Not while it is shutting down (503 `draining`); with every
 * upstream healthy `ready`; with one or more down `degraded` — still 200, unless every upstream is
 * required — since the others still serve and every instance sees the same upstreams.
 */
export function readinessEndpoint({ lifecycle, upstreams, requireAllUpstreams, details, shared }: ReadinessOptions): OwnEndpoint {
  const connection = { enum: ['up', 'down'] };
  const shownSchema = {
    services: { type: 'object', additionalProperties: false, required: UPSTREAM_NAMES, properties: Object.fromEntries(UPSTREAM_NAMES.map((name) => [name, { enum: UPSTREAM_HEALTH }])) },
    failing: { type: 'array', minItems: 1, items: { enum: UPSTREAM_NAMES } },
    // Redis down does not make an instance unready: every request is still answered, from the upstreams.
    shared: {
      type: 'object',
      additionalProperties: false,
      required: ['bus'],
      properties: {
        redis: { type: 'object', additionalProperties: false, required: ['commands', 'bus'], properties: { commands: connection, bus: connection } },
        bus: { enum: ['local', 'listening', 'deaf'] },
      },
    },
  };
  const status = { enum: requireAllUpstreams ? ['ready'] : ['ready', 'degraded'] };
  const ready = details ? { required: ['status', 'services', 'shared'], properties: { status, ...shownSchema } } : { required: ['status'], properties: { status } };
  return {
    path: '/ready',
    openapi: ownGet('Readiness: whether this instance can serve', {
      '200': { description: requireAllUpstreams ? 'Ready: every service answers' : 'Ready, or degraded: some services do not answer', content: { 'application/json': { schema: { type: 'object', additionalProperties: false, ...ready } } } },
      '503': problemResponse(
        requireAllUpstreams ? 'Not ready: shutting down, or a service does not answer' : 'Not ready: shutting down',
        503,
        details && requireAllUpstreams ? { properties: shownSchema } : undefined,
      ),
    }),
    async handle({ res, state }) {
      if (lifecycle.phase !== 'serving') throw new GatewayError('UPSTREAM_UNAVAILABLE', 'The gateway is shutting down');
      const health = await upstreams.current(state.get('requestId'));
      const shown = details ? { services: health.services, ...(health.failing.length > 0 ? { failing: health.failing } : {}), shared: shared.details() } : {};
      if (health.failing.length === 0) {
        sendJson(res, 200, { status: 'ready', ...shown });
        return;
      }
      const detail = details ? `Upstream services not ready: ${health.failing.join(', ')}` : 'Some upstream services are not ready';
      if (requireAllUpstreams) throw new GatewayError('UPSTREAM_UNAVAILABLE', detail, { extensions: shown });
      sendJson(res, 200, { status: 'degraded', ...shown });
    },
  };
}

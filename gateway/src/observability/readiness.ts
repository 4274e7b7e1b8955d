import { GatewayError } from '../errors.js';
import { sendJson, type OwnEndpoint } from '../own-endpoints.js';
import type { UpstreamClient } from '../upstream/client.js';
import { UPSTREAM_NAMES, type UpstreamName } from '../upstreams.js';

export type UpstreamHealth = 'ok' | 'unhealthy' | 'unreachable';

export interface Readiness {
  readonly ready: boolean;
  readonly services: Readonly<Record<UpstreamName, UpstreamHealth>>;
  readonly failing: readonly UpstreamName[];
}

const HEALTH_TIMEOUT_MS = 2000;

/** Asks every upstream's own health check, all at once, through the upstream client like any call. */
export async function checkReadiness(client: UpstreamClient, requestId: string): Promise<Readiness> {
  const caller = { requestId };
  const healthOf = async (name: UpstreamName): Promise<UpstreamHealth> => {
    try {
      const response = await client.request(name, { method: 'GET', path: '/health', caller, timeoutMs: HEALTH_TIMEOUT_MS, deadline: true, redirects: 'refuse' });
      await response.body.dump();
      return response.statusCode === 200 ? 'ok' : 'unhealthy';
    } catch {
      return 'unreachable';
    }
  };
  const results = await Promise.all(UPSTREAM_NAMES.map(async (name) => [name, await healthOf(name)] as const));
  const services = Object.fromEntries(results) as Record<UpstreamName, UpstreamHealth>;
  const failing = results.filter(([, health]) => health !== 'ok').map(([name]) => name);
  return { ready: failing.length === 0, services, failing };
}

/** GET /ready: 200 while every upstream answers its health check, else 503 naming those that do not. */
export function readinessEndpoint(client: UpstreamClient): OwnEndpoint {
  return {
    path: '/ready',
    async handle({ res, state }) {
      const readiness = await checkReadiness(client, state.get('requestId'));
      if (readiness.ready) {
        sendJson(res, 200, { status: 'ready', services: readiness.services });
        return;
      }
      throw new GatewayError('UPSTREAM_UNAVAILABLE', `Upstream services not ready: ${readiness.failing.join(', ')}`, {
        extensions: { failing: readiness.failing, services: readiness.services },
      });
    },
  };
}

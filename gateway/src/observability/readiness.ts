import { request } from 'undici';
import { UPSTREAM_NAMES, type UpstreamName, type UpstreamUrls } from '../upstreams.js';

export type UpstreamHealth = 'ok' | 'unhealthy' | 'unreachable';

export interface Readiness {
  readonly ready: boolean;
  readonly services: Readonly<Record<UpstreamName, UpstreamHealth>>;
  readonly failing: readonly UpstreamName[];
}

const HEALTH_TIMEOUT_MS = 2000;

async function healthOf(baseUrl: string): Promise<UpstreamHealth> {
  try {
    const response = await request(`${baseUrl}/health`, { headersTimeout: HEALTH_TIMEOUT_MS, bodyTimeout: HEALTH_TIMEOUT_MS });
    await response.body.dump();
    return response.statusCode === 200 ? 'ok' : 'unhealthy';
  } catch {
    return 'unreachable';
  }
}

/** Asks every upstream's own health check, all at once. */
export async function checkReadiness(upstreams: UpstreamUrls): Promise<Readiness> {
  const results = await Promise.all(UPSTREAM_NAMES.map(async (name) => [name, await healthOf(upstreams[name])] as const));
  const services = Object.fromEntries(results) as Record<UpstreamName, UpstreamHealth>;
  const failing = results.filter(([, health]) => health !== 'ok').map(([name]) => name);
  return { ready: failing.length === 0, services, failing };
}

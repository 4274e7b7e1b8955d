import type { Gateway } from '../../gateway/src/server.js';
import { eventually } from './wait.js';

/** The value of one sample of the Prometheus text exposition, labels in any order; undefined when absent. */
export function sample(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split('\n')) {
    const match = /^([a-z_:]+)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!match || match[1] !== name) continue;
    const present = Object.fromEntries([...(match[2] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map(([, key, value]) => [key, value]));
    if (Object.entries(labels).every(([key, value]) => present[key] === value) && Object.keys(present).length === Object.keys(labels).length) {
      return Number(match[3]);
    }
  }
  return undefined;
}

/** Calls to one upstream with one outcome, as `/metrics` counts them (0 when there is no such series yet). */
export async function upstreamCalls(baseUrl: string, service: string, method: string, status: string): Promise<number> {
  const text = await (await fetch(`${baseUrl}/metrics`)).text();
  return sample(text, 'gateway_upstream_requests_total', { service, method, status }) ?? 0;
}

/** Reads `upstreamCalls` now, and answers how many more there have been when asked later (tests run in any order). */
export async function upstreamCallsSince(baseUrl: string, service: string, method: string, status: string): Promise<() => Promise<number>> {
  const before = await upstreamCalls(baseUrl, service, method, status);
  return async () => (await upstreamCalls(baseUrl, service, method, status)) - before;
}

/** Every call a gateway made to any upstream, whatever came of it, as its /metrics counts them (read in-process). */
export async function upstreamCallsIn(gateway: Gateway): Promise<number> {
  const text = (await gateway.inject('/metrics')).body;
  return [...text.matchAll(/^gateway_upstream_requests_total\{[^}]*\} (\S+)$/gm)].reduce((sum, [, value]) => sum + Number(value), 0);
}

/** Waits until a gateway's limiter store says it is connected (until then requests pass unlimited, by design). */
export async function storeConnected(gatewayUrl: string): Promise<void> {
  await eventually(`the rate limit store of ${gatewayUrl} to say it is connected`, async () => /^gateway_rate_limit_store_up\{[^}]*\} 1$/m.test(await (await fetch(`${gatewayUrl}/metrics`)).text()));
}

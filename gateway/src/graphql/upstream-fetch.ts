import { fetch as undiciFetch, errors as undiciErrors } from 'undici';
import { createUpstreamAgent } from '../upstream/agent.js';
import { GatewayError } from '../errors.js';
import { secondsSince, type GatewayMetrics } from '../observability/metrics.js';
import { summariseUpstreamError } from '../rest/proxy.js';
import { UpstreamHttpError } from '../upstream/errors.js';
import { UPSTREAM_NAMES, UPSTREAMS, type UpstreamName, type UpstreamUrls } from '../upstreams.js';

export type MeshFetch = (url: string, init?: RequestInit) => Promise<Response>;

/**
 * The fetch Mesh's sources call upstreams with: undici with keep-alive pools and the gateway's timeout.
 * An error status becomes an UpstreamHttpError (so GraphQL errors carry the upstream's status, not a
 * Mesh message with URLs in it); an unreachable or slow upstream becomes the gateway's own error.
 */
export function createUpstreamFetch(upstreams: UpstreamUrls, timeoutMs: number, metrics: GatewayMetrics): { fetch: MeshFetch; close(): Promise<void> } {
  const agent = createUpstreamAgent();
  const serviceOf = (url: string): UpstreamName | undefined => UPSTREAM_NAMES.find((name) => url.startsWith(`${upstreams[name]}/`));

  async function fetch(url: string, init: RequestInit = {}): Promise<Response> {
    const upstream = serviceOf(url);
    if (!upstream) throw new GatewayError('INTERNAL', 'A GraphQL source called an unknown upstream');
    const { title } = UPSTREAMS[upstream];
    const headers = new Headers(init.headers);
    // Operation headers interpolate to "" when there is no caller: send none rather than an empty identity.
    for (const [name, value] of [...headers]) if (value === '' || value === 'undefined') headers.delete(name);
    const method = init.method ?? 'GET';
    const started = process.hrtime.bigint();
    let response: Response;
    try {
      response = (await undiciFetch(url, {
        method,
        headers: Object.fromEntries(headers),
        body: init.body as string | undefined,
        dispatcher: agent,
        signal: AbortSignal.timeout(timeoutMs),
      })) as unknown as Response;
    } catch (error) {
      const cause = (error as { cause?: unknown }).cause;
      if ((error as Error).name === 'TimeoutError' || cause instanceof undiciErrors.HeadersTimeoutError) {
        metrics.observeUpstream(upstream, method, 'timeout', secondsSince(started));
        throw new GatewayError('UPSTREAM_TIMEOUT', `The ${title} service did not answer in time`);
      }
      metrics.observeUpstream(upstream, method, 'unreachable', secondsSince(started));
      throw new GatewayError('UPSTREAM_UNAVAILABLE', `The ${title} service is unavailable`);
    }
    metrics.observeUpstream(upstream, method, response.status, secondsSince(started));
    if (response.status >= 400) {
      const text = await response.text().catch(() => '');
      const summary = summariseUpstreamError(response.status, text, title, Object.fromEntries(response.headers));
      throw new UpstreamHttpError(upstream, response.status, summary.detail, summary.errors);
    }
    return response;
  }

  return { fetch, close: () => agent.close() };
}

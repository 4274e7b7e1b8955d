import type { UpstreamName } from '../upstreams.js';

/** An upstream answered with an error status. `detail` is safe to show: 5xx details are generic. */
export class UpstreamHttpError extends Error {
  readonly code = 'GATEWAY_UPSTREAM_HTTP_ERROR';

  constructor(
    readonly upstream: UpstreamName,
    readonly status: number,
    readonly detail: string,
    readonly errors?: unknown[],
  ) {
    super(detail);
    this.name = 'UpstreamHttpError';
  }
}

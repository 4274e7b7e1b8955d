import { Agent } from 'undici';

/** The keep-alive pools the gateway calls upstreams through (one pool per upstream origin). */
export function createUpstreamAgent(): Agent {
  return new Agent({ connections: 256, keepAliveTimeout: 30_000, keepAliveMaxTimeout: 60_000, connect: { timeout: 5000 } });
}

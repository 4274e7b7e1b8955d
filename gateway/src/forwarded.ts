import type { IncomingMessage } from 'node:http';
import type { GatewayPlugin } from './pipeline/pipeline.js';

type HeaderValue = string | string[] | undefined;

/** Where a request came from, as far as the gateway can trust what proxies in front of it say. */
export interface Forwarded {
  /** The address rate limits and logs attribute the request to. */
  readonly clientIp: string;
  /** The `X-Forwarded-For` chain to send on: trusted entries plus the peer that connected. */
  readonly forwardedFor: string;
  readonly proto: string;
  readonly host: string;
}

function lastValue(value: HeaderValue): string | undefined {
  const joined = Array.isArray(value) ? value.join(',') : value;
  const last = joined?.split(',').at(-1)?.trim();
  return last === '' ? undefined : last;
}

/**
 * With `trustedHops` proxies in front (each appending to `X-Forwarded-For`), only the last
 * `trustedHops` entries were written by proxies we trust; anything before them is the client's claim.
 * `X-Forwarded-Proto` / `-Host` are believed only from a trusted proxy.
 */
export function forwardedOf(req: IncomingMessage, trustedHops: number): Forwarded {
  const peer = req.socket.remoteAddress ?? '';
  const host = req.headers.host ?? '';
  if (trustedHops === 0) return { clientIp: peer, forwardedFor: peer, proto: 'http', host };
  const header = req.headers['x-forwarded-for'];
  const claimed = (Array.isArray(header) ? header.join(',') : (header ?? ''))
    .split(',')
    .map((entry) => entry.trim())
    .filter((entry) => entry !== '');
  const trusted = claimed.slice(-trustedHops);
  return {
    clientIp: trusted[0] ?? peer,
    forwardedFor: [...trusted, peer].join(', '),
    proto: lastValue(req.headers['x-forwarded-proto']) ?? 'http',
    host: lastValue(req.headers['x-forwarded-host']) ?? host,
  };
}

/** Works out where each request came from once, when it arrives. */
export function forwardedPlugin(trustedHops: number): GatewayPlugin {
  return {
    name: 'forwarded',
    phases: {
      onRequest({ req, state }) {
        state.set('forwarded', forwardedOf(req, trustedHops));
        return undefined;
      },
    },
  };
}

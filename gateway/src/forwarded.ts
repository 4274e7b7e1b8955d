import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import ipaddr from 'ipaddr.js';
import type { GatewayPlugin } from './pipeline/pipeline.js';

declare module './pipeline/state.js' {
  interface RequestVariables {
    /** onRequest (forwarded): the client's address, scheme and host through trusted proxies. */
    readonly forwarded: Forwarded;
  }
}

type HeaderValue = string | string[] | undefined;

/** Where a request came from, as far as the gateway can trust what proxies in front of it say. */
export interface Forwarded {
  /** The address logs and traces attribute the request to, as it came. */
  readonly clientIp: string;
  /** What every per-address bound counts the request under: `clientIp` as `clientKeyOf` groups it. */
  readonly clientKey: string;
  /** The `X-Forwarded-For` chain to send on: trusted entries plus the peer that connected. */
  readonly forwardedFor: string;
  readonly proto: string;
  readonly host: string;
}

/** How the client address is read: TRUST_PROXY_HOPS, and RATE_LIMIT_IPV6_PREFIX for its key. */
export interface ClientAddressPolicy {
  readonly trustedHops: number;
  readonly ipv6Prefix: number;
}

/**
 * The longest client address kept (an IPv6 address with a zone and port fits): a trusted entry can
 * still hold anything (a proxy's `unknown`, or a client's text with fewer proxies than TRUST_PROXY_HOPS),
 * and it goes into logs and keys.
 */
const MAX_ADDRESS_LENGTH = 64;

/** `1.2.3.4:5678` and `[2001:db8::1]:5678`: some proxies append the client's port, which is not the client. */
const WITH_PORT = /^(?:(\d{1,3}(?:\.\d{1,3}){3}):\d+|\[([^\]]+)\](?::\d+)?)$/;

/**
 * The key every per-address bound (request rate, registrations, credential checks and uploads in
 * flight) counts a client under. An IPv4 address is its own key, and an IPv4-mapped IPv6 address
 * (`::ffff:1.2.3.4`) is that IPv4 address. An IPv6 address counts by its first `ipv6Prefix` bits: one
 * subscriber is given a whole /64 (or more), every address of which is the same client. Anything else is
 * its own key, cut to 64 characters.
 */
export function clientKeyOf(address: string, ipv6Prefix: number): string {
  const match = WITH_PORT.exec(address);
  const bare = match ? (match[1] ?? match[2] ?? address) : address;
  if (!ipaddr.isValid(bare)) return address.slice(0, MAX_ADDRESS_LENGTH);
  const parsed = ipaddr.process(bare);
  if (parsed.kind() === 'ipv4') return parsed.toString();
  const mask = ipaddr.IPv6.subnetMaskFromPrefixLength(ipv6Prefix).toByteArray();
  const network = ipaddr.fromByteArray(parsed.toByteArray().map((byte, index) => byte & (mask[index] ?? 0)));
  return `${network.toString()}/${ipv6Prefix}`;
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
export function forwardedOf(req: IncomingMessage, { trustedHops, ipv6Prefix }: ClientAddressPolicy): Forwarded {
  const peer = req.socket.remoteAddress ?? '';
  const host = req.headers.host ?? '';
  if (trustedHops === 0) return { clientIp: peer, clientKey: clientKeyOf(peer, ipv6Prefix), forwardedFor: peer, proto: 'http', host };
  const header = req.headers['x-forwarded-for'];
  const claimed = (Array.isArray(header) ? header.join(',') : (header ?? ''))
    .split(',')
    .map((entry) => entry.trim())
    .filter((entry) => entry !== '');
  const trusted = claimed.slice(-trustedHops);
  const clientIp = (trusted[0] ?? peer).slice(0, MAX_ADDRESS_LENGTH);
  return {
    clientIp,
    clientKey: clientKeyOf(clientIp, ipv6Prefix),
    forwardedFor: [...trusted, peer].join(', '),
    proto: lastValue(req.headers['x-forwarded-proto']) ?? 'http',
    host: lastValue(req.headers['x-forwarded-host']) ?? host,
  };
}

/** What `forwardedOf` read of a request, beside what it made of it. */
interface Reading {
  readonly host: HeaderValue;
  readonly forwardedFor: HeaderValue;
  readonly proto: HeaderValue;
  readonly forwardedHost: HeaderValue;
  readonly forwarded: Forwarded;
}

/**
 * Works out where each request came from once, when it arrives. A keep-alive connection's requests
 * mostly say the same (its peer never changes, a proxy in front sends the same chain): what was made of
 * the connection's last request is used again while the headers it was made from are the same, which
 * spares parsing the address (ipaddr.js) on every request.
 */
export function forwardedPlugin(policy: ClientAddressPolicy): GatewayPlugin {
  const last = new WeakMap<Socket, Reading>();
  return {
    name: 'forwarded',
    phases: {
      onRequest({ req, state }) {
        const { headers, socket } = req;
        const host = headers.host;
        const forwardedFor = headers['x-forwarded-for'];
        const proto = headers['x-forwarded-proto'];
        const forwardedHost = headers['x-forwarded-host'];
        const seen = last.get(socket);
        if (seen && seen.host === host && seen.forwardedFor === forwardedFor && seen.proto === proto && seen.forwardedHost === forwardedHost) {
          state.set('forwarded', seen.forwarded);
          return undefined;
        }
        const forwarded = forwardedOf(req, policy);
        // Strings compare by value; a repeated header (an array) is made again each time.
        if (!Array.isArray(forwardedFor) && !Array.isArray(proto) && !Array.isArray(forwardedHost)) last.set(socket, { host, forwardedFor, proto, forwardedHost, forwarded });
        state.set('forwarded', forwarded);
        return undefined;
      },
    },
  };
}

import { createServer, request, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { UPSTREAM_NAMES, type UpstreamName, type UpstreamUrls } from '../../shared/upstreams.js';

export interface CountedCall {
  readonly upstream: UpstreamName;
  readonly method: string;
  readonly url: string;
  /** The request headers as the gateway sent them (X-Forwarded-For says for whom). */
  readonly headers: IncomingHttpHeaders;
  /** When the call arrived and, once the upstream answered it whole, when it ended (performance.now()). */
  readonly startedMs: number;
  endedMs?: number;
}

export interface CountingProxies {
  /** What the gateway should call: one pass-through proxy per upstream. */
  readonly urls: UpstreamUrls;
  readonly calls: CountedCall[];
  count(upstream?: UpstreamName): number;
  /** The most calls among `selected` that were in flight at once. */
  peakInFlight(selected: (call: CountedCall) => boolean): number;
  reset(): void;
  close(): Promise<void>;
}

/**
 * A transparent proxy in front of each real upstream that records every call the gateway makes
 * (calls between the services themselves go direct, so they are not counted).
 */
export async function startCountingProxies(targets: UpstreamUrls): Promise<CountingProxies> {
  const calls: CountedCall[] = [];
  const servers: Server[] = [];
  const urls = {} as UpstreamUrls;
  for (const upstream of UPSTREAM_NAMES) {
    const target = new URL(targets[upstream]);
    const server = createServer((req, res) => {
      const call: CountedCall = { upstream, method: req.method ?? '', url: req.url ?? '', headers: req.headers, startedMs: performance.now() };
      calls.push(call);
      res.once('close', () => (call.endedMs = performance.now()));
      const forwarded = request({ host: target.hostname, port: target.port, method: req.method, path: req.url, headers: req.headers }, (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      });
      forwarded.on('error', () => res.destroy());
      req.pipe(forwarded);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    servers.push(server);
    urls[upstream] = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  }
  return {
    urls,
    calls,
    count: (upstream) => calls.filter((call) => upstream === undefined || call.upstream === upstream).length,
    peakInFlight: (selected) => {
      // Every start and end in time order (an end before a start at the same instant): the running count's peak.
      const events = calls.filter(selected).flatMap((call) => [[call.startedMs, 1] as const, [call.endedMs ?? Infinity, -1] as const]);
      events.sort(([a, da], [b, db]) => a - b || da - db);
      let inFlight = 0;
      let peak = 0;
      for (const [, delta] of events) peak = Math.max(peak, (inFlight += delta));
      return peak;
    },
    reset: () => {
      calls.length = 0;
    },
    close: async () => {
      await Promise.all(
        servers.map(
          (server) =>
            new Promise<void>((resolve) => {
              server.close(() => resolve());
              server.closeAllConnections();
            }),
        ),
      );
    },
  };
}

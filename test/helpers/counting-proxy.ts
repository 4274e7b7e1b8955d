import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { UPSTREAM_NAMES, type UpstreamName, type UpstreamUrls } from '../../shared/upstreams.js';

export interface CountedCall {
  readonly upstream: UpstreamName;
  readonly method: string;
  readonly url: string;
}

export interface CountingProxies {
  /** What the gateway should call: one pass-through proxy per upstream. */
  readonly urls: UpstreamUrls;
  readonly calls: CountedCall[];
  count(upstream?: UpstreamName): number;
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
      calls.push({ upstream, method: req.method ?? '', url: req.url ?? '' });
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

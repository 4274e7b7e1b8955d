import { createServer, type IncomingHttpHeaders, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { UPSTREAM_NAMES, type UpstreamName, type UpstreamUrls } from '../../gateway/src/upstreams.js';

export interface RecordedRequest {
  readonly method: string;
  /** The request target exactly as it arrived. */
  readonly url: string;
  readonly headers: IncomingHttpHeaders;
  readonly body: Buffer;
}

export type UpstreamBehaviour = (request: IncomingMessage, res: ServerResponse, recorded: () => Promise<RecordedRequest>) => void | Promise<void>;

/** By default: the body read, then 200 JSON naming the upstream and echoing method and target. */
function echo(name: string): UpstreamBehaviour {
  return async (req, res, recorded) => {
    const request = await recorded();
    const payload = JSON.stringify({ upstream: name, method: request.method, url: request.url });
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) }).end(payload);
  };
}

/** A real HTTP server standing in for an upstream: records every request, answers as told. */
export class RecordingUpstream {
  readonly requests: RecordedRequest[] = [];
  behaviour: UpstreamBehaviour;

  private constructor(
    readonly name: string,
    private readonly server: Server,
    readonly url: string,
  ) {
    this.behaviour = echo(name);
  }

  static async start(name: string): Promise<RecordingUpstream> {
    let upstream: RecordingUpstream | undefined;
    const server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      const done = new Promise<RecordedRequest>((resolve) => {
        req.on('data', (chunk: Buffer) => chunks.push(chunk));
        req.on('end', () => resolve({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks) }));
      });
      const entry = { method: req.method ?? '', url: req.url ?? '', headers: req.headers, body: Buffer.alloc(0) };
      upstream?.requests.push(entry);
      void done.then((request) => Object.assign(entry, { body: request.body }));
      void Promise.resolve(upstream?.behaviour(req, res, () => done)).catch(() => res.destroy());
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    upstream = new RecordingUpstream(name, server, `http://127.0.0.1:${(server.address() as AddressInfo).port}`);
    return upstream;
  }

  reset(): void {
    this.requests.length = 0;
    this.behaviour = echo(this.name);
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }
}

export interface RecordingUpstreams {
  readonly upstreams: Readonly<Record<UpstreamName, RecordingUpstream>>;
  readonly urls: UpstreamUrls;
  /** Every request any of the six received since the last reset. */
  all(): RecordedRequest[];
  reset(): void;
  close(): Promise<void>;
}

export async function startRecordingUpstreams(): Promise<RecordingUpstreams> {
  const started = await Promise.all(UPSTREAM_NAMES.map((name) => RecordingUpstream.start(name)));
  const upstreams = Object.fromEntries(started.map((upstream) => [upstream.name, upstream])) as Record<UpstreamName, RecordingUpstream>;
  const urls = Object.fromEntries(started.map((upstream) => [upstream.name, upstream.url])) as UpstreamUrls;
  return {
    upstreams,
    urls,
    all: () => started.flatMap((upstream) => upstream.requests),
    reset: () => started.forEach((upstream) => upstream.reset()),
    close: async () => {
      await Promise.all(started.map((upstream) => upstream.close()));
    },
  };
}

import { useFixture } from './fixture.js';
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { UPSTREAM_NAMES, type UpstreamName, type UpstreamUrls } from '../../shared/upstreams.js';

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
  private readonly server: Server;
  private port = 0;

  private constructor(readonly name: string) {
    this.behaviour = echo(name);
    this.server = createServer((req, res) => this.record(req, res));
  }

  static async start(name: string): Promise<RecordingUpstream> {
    const upstream = new RecordingUpstream(name);
    await new Promise<void>((resolve) => upstream.server.listen(0, '127.0.0.1', resolve));
    upstream.port = (upstream.server.address() as AddressInfo).port;
    return upstream;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  private record(req: IncomingMessage, res: ServerResponse): void {
    const chunks: Buffer[] = [];
    const entry = { method: req.method ?? '', url: req.url ?? '', headers: req.headers, body: Buffer.alloc(0) };
    this.requests.push(entry);
    const done = new Promise<RecordedRequest>((resolve) => {
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', () => resolve(Object.assign(entry, { body: Buffer.concat(chunks) })));
    });
    void Promise.resolve(this.behaviour(req, res, () => done)).catch(() => res.destroy());
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

/** Six recording upstreams for the whole describe, reset before each test (for gateways a test starts itself). */
export function useRecordingUpstreams(): RecordingUpstreams {
  return useFixture(startRecordingUpstreams, (upstreams) => upstreams.close(), { reset: (upstreams) => upstreams.reset() });
}

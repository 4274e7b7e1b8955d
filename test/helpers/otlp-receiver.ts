import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { eventually } from './wait.js';

/** One span as an OTLP/JSON export carries it, flattened, with its process's `service.name`. */
export interface ReceivedSpan {
  readonly service: string;
  readonly traceId: string;
  readonly spanId: string;
  readonly parentSpanId: string;
  readonly name: string;
  /** 1 internal, 2 server, 3 client. */
  readonly kind: number;
  readonly attributes: Readonly<Record<string, unknown>>;
  readonly links: readonly { readonly traceId: string; readonly spanId: string }[];
  readonly status: { readonly code?: number };
}

/** An export as it arrived. */
export interface ReceivedExport {
  readonly contentType: string;
  readonly body: Buffer;
}

interface OtlpValue {
  stringValue?: string;
  intValue?: number | string;
  boolValue?: boolean;
  doubleValue?: number;
}
interface OtlpAttribute {
  key: string;
  value: OtlpValue;
}
interface OtlpJson {
  resourceSpans?: {
    resource?: { attributes?: OtlpAttribute[] };
    scopeSpans?: { spans?: (Omit<ReceivedSpan, 'service' | 'attributes' | 'parentSpanId' | 'links'> & { parentSpanId?: string; attributes?: OtlpAttribute[]; links?: { traceId: string; spanId: string }[] })[] }[];
  }[];
}

const valueOf = (value: OtlpValue): unknown => value.stringValue ?? (value.intValue !== undefined ? Number(value.intValue) : (value.boolValue ?? value.doubleValue));
const attributesOf = (attributes: OtlpAttribute[] = []) => Object.fromEntries(attributes.map(({ key, value }) => [key, valueOf(value)]));

/**
 * A real OTLP/HTTP trace receiver (`POST /v1/traces`), as a collector listens on 4318: keeps every
 * export as it arrived (protobuf or JSON) and the spans of the JSON ones.
 */
export class OtlpReceiver {
  readonly exports: ReceivedExport[] = [];
  readonly spans: ReceivedSpan[] = [];

  private readonly server: Server;
  private port = 0;

  private constructor() {
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', () => {
        const contentType = req.headers['content-type'] ?? '';
        if (req.method !== 'POST' || req.url !== '/v1/traces') {
          res.writeHead(404).end();
          return;
        }
        this.receive({ contentType, body: Buffer.concat(chunks) });
        res.writeHead(200, { 'content-type': contentType }).end(contentType.includes('json') ? '{}' : '');
      });
    });
  }

  static async start(): Promise<OtlpReceiver> {
    const receiver = new OtlpReceiver();
    await new Promise<void>((resolve) => receiver.server.listen(0, '127.0.0.1', resolve));
    receiver.port = (receiver.server.address() as AddressInfo).port;
    return receiver;
  }

  /** What OTEL_EXPORTER_OTLP_ENDPOINT should say. */
  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  private receive(received: ReceivedExport): void {
    this.exports.push(received);
    if (!received.contentType.includes('json')) return;
    for (const resourceSpans of (JSON.parse(received.body.toString()) as OtlpJson).resourceSpans ?? []) {
      const service = String(attributesOf(resourceSpans.resource?.attributes)['service.name']);
      for (const scope of resourceSpans.scopeSpans ?? []) {
        for (const span of scope.spans ?? []) {
          this.spans.push({ ...span, service, parentSpanId: span.parentSpanId ?? '', attributes: attributesOf(span.attributes), links: span.links ?? [] });
        }
      }
    }
  }

  /** The spans of one trace. */
  trace(traceId: string): ReceivedSpan[] {
    return this.spans.filter((span) => span.traceId === traceId);
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }
}

/**
 * The chain of spans, root first, down to the `service`'s server span `name` in the trace of the request
 * the gateway served as `requestId`, once every process exported its part (each on its own schedule).
 */
export async function traceChain(receiver: OtlpReceiver, requestId: string, service: string, name: string): Promise<string[]> {
  const server = await eventually(`the gateway's span of request ${requestId} at the receiver`, () => receiver.spans.find((span) => span.attributes['gateway.request_id'] === requestId));
  const leaf = await eventually(`${service}'s server span "${name}" in trace ${server.traceId}`, () => receiver.trace(server.traceId).find((span) => span.service === service && span.kind === 2 && span.name === name));
  return eventually(`every span from ${service}'s "${name}" up to the gateway's server span`, () => {
    const byId = new Map(receiver.trace(server.traceId).map((span) => [span.spanId, span]));
    const chain: ReceivedSpan[] = [leaf];
    for (let parent = byId.get(leaf.parentSpanId); parent; parent = byId.get(parent.parentSpanId)) chain.unshift(parent);
    // Complete once it reaches the gateway's server span; a parent still on its way leaves a gap.
    return chain[0]?.spanId === server.spanId ? chain.map((span) => `${span.service}: ${span.name}`) : undefined;
  });
}

import type { IncomingHttpHeaders } from 'node:http';
import { GatewayError } from './errors.js';

/** Raised inside a request body stream when a client sends more than the body limit. */
export class BodyTooLargeError extends Error {
  readonly code = 'GATEWAY_BODY_TOO_LARGE';
}

export function isBodyTooLarge(error: unknown): boolean {
  return error instanceof BodyTooLargeError || (error as { cause?: unknown } | undefined)?.cause instanceof BodyTooLargeError;
}

/** The 413 for BODY_LIMIT_BYTES; the connection closes, since the rest of the body is never read. */
export function payloadTooLarge(limit: number): GatewayError {
  return new GatewayError('PAYLOAD_TOO_LARGE', `The request body is over the limit of ${limit} bytes`, { connection: 'close' });
}

/** A declared Content-Length over the limit is refused before a byte of the body is read. */
export function assertDeclaredLength(headers: IncomingHttpHeaders, limit: number): void {
  if (Number(headers['content-length'] ?? 0) > limit) throw payloadTooLarge(limit);
}

/** The body as it arrives, failing with BodyTooLargeError once it passes the limit (chunked bodies). */
export async function* limitedBody(source: AsyncIterable<Buffer>, limit: number): AsyncGenerator<Buffer> {
  let received = 0;
  for await (const chunk of source) {
    received += chunk.length;
    if (received > limit) throw new BodyTooLargeError('request body over the limit');
    yield chunk;
  }
}

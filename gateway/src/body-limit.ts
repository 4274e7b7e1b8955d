import type { IncomingHttpHeaders } from 'node:http';
import { GatewayError } from './errors.js';

/** Raised inside a request body stream when a client sends more than the body limit. */
export class BodyTooLargeError extends Error {
  readonly code = 'GW_ERR_BODY_TOO_LARGE';

  constructor(readonly limit: number) {
    super(`request body over the limit of ${limit} bytes`);
  }
}

/** The BodyTooLargeError behind an error (undici hands it on as the cause of its own), if any. */
export function bodyTooLargeOf(error: unknown): BodyTooLargeError | undefined {
  if (error instanceof BodyTooLargeError) return error;
  const cause = (error as { cause?: unknown } | undefined)?.cause;
  return cause instanceof BodyTooLargeError ? cause : undefined;
}

/** The 413 for BODY_LIMIT_BYTES; the connection closes, since the rest of the body is never read. */
export function payloadTooLarge(limit: number, cause?: unknown): GatewayError {
  return new GatewayError('PAYLOAD_TOO_LARGE', `The request body is over the limit of ${limit} bytes`, { headers: { connection: 'close' }, cause });
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
    if (received > limit) throw new BodyTooLargeError(limit);
    yield chunk;
  }
}

/** The whole body as text, within the limit (413 above it, declared or not). */
export async function readLimited(source: AsyncIterable<Buffer> & { headers: IncomingHttpHeaders }, limit: number): Promise<string> {
  assertDeclaredLength(source.headers, limit);
  const chunks: Buffer[] = [];
  try {
    for await (const chunk of limitedBody(source, limit)) chunks.push(chunk);
  } catch (error) {
    const tooLarge = bodyTooLargeOf(error);
    throw tooLarge ? payloadTooLarge(limit, tooLarge) : error;
  }
  return Buffer.concat(chunks).toString('utf8');
}

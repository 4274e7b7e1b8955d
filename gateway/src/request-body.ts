import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import { Readable } from 'node:stream';
import { GatewayError } from './errors.js';

/** How request bodies are read: the size limit and how long a client may take. */
export interface BodyPolicy {
  /** BODY_LIMIT_BYTES: above it, 413. */
  readonly limitBytes: number;
  /** REQUEST_BODY_IDLE_TIMEOUT_MS: the longest pause between two chunks. */
  readonly idleTimeoutMs: number;
  /** REQUEST_BODY_TIMEOUT_MS: the longest a whole body may take. */
  readonly totalTimeoutMs: number;
}

/** Raised inside a request body stream when a client sends more than the body limit. */
export class BodyTooLargeError extends Error {
  readonly code = 'GW_ERR_BODY_TOO_LARGE';

  constructor(readonly limit: number) {
    super(`request body over the limit of ${limit} bytes`);
  }
}

/** Raised inside a request body stream when a client pauses too long, or takes too long in all. */
export class BodyTimeoutError extends Error {
  readonly code = 'GW_ERR_BODY_TIMEOUT';
}

/** The error of the kind `kind` behind an error (undici hands it on as the cause of its own), if any. */
export function bodyErrorOf<T extends Error>(error: unknown, kind: new (...args: never[]) => T): T | undefined {
  if (error instanceof kind) return error;
  const cause = (error as { cause?: unknown } | undefined)?.cause;
  return cause instanceof kind ? cause : undefined;
}

/** The 413 for BODY_LIMIT_BYTES; the connection closes, since the rest of the body is never read. */
export function payloadTooLarge(limit: number, cause?: unknown): GatewayError {
  return new GatewayError('PAYLOAD_TOO_LARGE', `The request body is over the limit of ${limit} bytes`, { headers: { connection: 'close' }, cause });
}

/** The 408 for a body that stalled or dragged on; the connection closes. */
export function bodyTimedOut(cause: BodyTimeoutError): GatewayError {
  return new GatewayError('REQUEST_TIMEOUT', 'The request body did not arrive in time', { headers: { connection: 'close' }, cause });
}

/** A declared Content-Length over the limit is refused before a byte of the body is read. */
export function assertDeclaredLength(headers: IncomingHttpHeaders, limit: number): void {
  if (Number(headers['content-length'] ?? 0) > limit) throw payloadTooLarge(limit);
}

export function hasBody(headers: IncomingHttpHeaders): boolean {
  return headers['transfer-encoding'] !== undefined || Number(headers['content-length'] ?? 0) > 0;
}

/** Body bytes read so far, per request (for the access log). */
const bytesReceived = new WeakMap<IncomingMessage, number>();

/** How many bytes of `req`'s body the gateway has read. */
export function bodyBytesReceived(req: IncomingMessage): number {
  return bytesReceived.get(req) ?? 0;
}

/**
 * The body as it arrives, within the policy: BodyTooLargeError past the limit, BodyTimeoutError after
 * a pause or a total time over the policy's. A client that sent `Expect: 100-continue` is told to go on
 * only now, when every check that could refuse it has passed (the gateway answers `checkContinue`).
 */
export async function* limitedBody(req: IncomingMessage, res: ServerResponse, policy: BodyPolicy): AsyncGenerator<Buffer> {
  if (/^100-continue$/i.test(req.headers.expect ?? '')) res.writeContinue();
  const deadline = Date.now() + policy.totalTimeoutMs;
  const chunks = req[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  let received = 0;
  for (;;) {
    const wait = Math.min(policy.idleTimeoutMs, deadline - Date.now());
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new BodyTimeoutError(`no body chunk within ${wait} ms`)), Math.max(0, wait));
    });
    const next = await Promise.race([chunks.next(), late]).finally(() => clearTimeout(timer));
    if (next.done) return;
    received += next.value.length;
    bytesReceived.set(req, received);
    if (received > policy.limitBytes) throw new BodyTooLargeError(policy.limitBytes);
    yield next.value;
  }
}

/** The body as a stream to forward (REST uploads above the buffered size). */
export function bodyStream(req: IncomingMessage, res: ServerResponse, policy: BodyPolicy): Readable {
  return Readable.from(limitedBody(req, res, policy), { objectMode: false });
}

/** The whole body in memory, within the policy, its failures as the catalogue's 413 and 408. */
export async function readBody(req: IncomingMessage, res: ServerResponse, policy: BodyPolicy): Promise<Buffer> {
  assertDeclaredLength(req.headers, policy.limitBytes);
  const chunks: Buffer[] = [];
  try {
    for await (const chunk of limitedBody(req, res, policy)) chunks.push(chunk);
  } catch (error) {
    const tooLarge = bodyErrorOf(error, BodyTooLargeError);
    if (tooLarge) throw payloadTooLarge(policy.limitBytes, tooLarge);
    const late = bodyErrorOf(error, BodyTimeoutError);
    if (late) throw bodyTimedOut(late);
    throw error;
  }
  return Buffer.concat(chunks);
}

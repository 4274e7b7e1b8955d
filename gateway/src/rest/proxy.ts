import type { ServerResponse } from 'node:http';
import { errors as undiciErrors, type Dispatcher } from 'undici';
import { appendVary } from '../cors.js';
import type { UpstreamCall } from '../upstream/call.js';
import { MAX_ERROR_BODY_BYTES, type UpstreamClient } from '../upstream/client.js';
import { upstreamFailure } from '../upstream/failures.js';
import type { UpstreamName } from '../../../shared/upstreams.js';
import { clientResponseHeaders } from './headers.js';

type Controller = Dispatcher.DispatchController;
type Headers = Parameters<NonNullable<Dispatcher.DispatchHandler['onResponseStart']>>[2];

/**
 * Relays an upstream's answer to the client as it arrives: status and headers (less hop-by-hop and
 * CORS), then the body chunk by chunk with backpressure (the upstream read pauses while the client is
 * slow). An error status is not relayed: up to 64 KiB of its body are kept for the catalogue's error.
 * Written straight on undici's handler interface, with no intermediate stream.
 */
class RelayHandler implements Dispatcher.DispatchHandler {
  private controller: Controller | undefined;
  private clientGone = false;
  private relaying = false;
  private errorStatus = 0;
  private errorHeaders: Headers = {};
  private readonly errorChunks: Buffer[] = [];
  private errorBytes = 0;
  readonly done: Promise<void>;
  private settle!: (error?: Error) => void;
  private settled = false;

  constructor(
    private readonly client: UpstreamClient,
    private readonly upstream: UpstreamName,
    private readonly call: UpstreamCall,
    private readonly res: ServerResponse,
  ) {
    this.done = new Promise((resolve, reject) => {
      this.settle = (error) => {
        if (this.settled) return;
        this.settled = true;
        this.res.off('close', this.onClientClose);
        if (error) reject(error);
        else resolve();
      };
    });
    // A response closes once: a plain listener, without the wrapper `once` makes for every request.
    res.on('close', this.onClientClose);
  }

  private readonly onClientClose = () => {
    if (this.res.writableFinished) return;
    // The client went away first: the upstream call is cancelled (or will be, as soon as it starts).
    this.clientGone = true;
    this.controller?.abort(new undiciErrors.RequestAbortedError('the client went away'));
  };

  onRequestStart(controller: Controller): void {
    this.controller = controller;
    if (this.clientGone) controller.abort(new undiciErrors.RequestAbortedError('the client went away'));
  }

  onResponseStart(_controller: Controller, statusCode: number, headers: Headers): void {
    if (statusCode >= 400) {
      this.errorStatus = statusCode;
      this.errorHeaders = headers;
      return;
    }
    // An answer to a request with credentials is that caller's: every route that needs a token, any other one was sent to.
    const personal = this.call.caller.identity !== undefined || this.call.caller.authorization !== undefined;
    const relayed = clientResponseHeaders(statusCode, headers, personal);
    // Vary is merged with the gateway's own (CORS), not replaced by the upstream's.
    const { vary } = relayed;
    if (vary !== undefined) {
      delete relayed.vary;
      appendVary(this.res, vary);
    }
    this.relaying = true;
    this.res.writeHead(statusCode, relayed);
    // These statuses have no body (RFC 9110 15.3.5, 15.4.5): whatever an upstream sends after one is not relayed.
    if (statusCode === 204 || statusCode === 304) this.finish();
  }

  private finish(): void {
    if (!this.res.writableEnded) this.res.end();
    this.settle();
  }

  onResponseData(controller: Controller, chunk: Buffer): void {
    if (this.errorStatus !== 0) {
      this.errorChunks.push(chunk);
      this.errorBytes += chunk.length;
      if (this.errorBytes >= MAX_ERROR_BODY_BYTES) {
        // Enough to find its detail: the rest is never read.
        this.settleError();
        controller.abort(new undiciErrors.RequestAbortedError('the error body was read far enough'));
      }
      return;
    }
    if (this.settled) return;
    if (!this.res.write(chunk)) {
      controller.pause();
      this.res.once('drain', () => controller.resume());
    }
  }

  private settleError(): void {
    const text = Buffer.concat(this.errorChunks).toString('utf8');
    this.settle(this.client.httpFailure(this.upstream, this.call, this.errorStatus, this.errorHeaders, text));
  }

  onResponseEnd(): void {
    if (this.errorStatus !== 0) this.settleError();
    else this.finish();
  }

  onResponseError(_controller: Controller | undefined, error: Error): void {
    if (this.settled) return;
    if (this.relaying || this.clientGone) {
      // Part of the answer is out (or nobody is listening): nothing more can be said on this response.
      this.res.destroy();
      this.settle();
      return;
    }
    this.settle(upstreamFailure(error, this.upstream, this.errorStatus !== 0));
  }
}

/**
 * Sends the client's request on through the upstream client and relays the answer. An upstream error
 * status is thrown as the catalogue's error; redirects and every other status below 400 are relayed as
 * they are.
 */
export function forward(client: UpstreamClient, upstream: UpstreamName, res: ServerResponse, call: UpstreamCall): Promise<void> {
  const relay = new RelayHandler(client, upstream, call, res);
  client.dispatch(upstream, call, relay);
  return relay.done;
}

import { randomUUID } from 'node:crypto';
import type { GatewayPlugin } from '../pipeline/pipeline.js';

declare module '../pipeline/state.js' {
  interface RequestVariables {
    /** onRequest (request id): the client's sane X-Request-ID, or a new one. */
    readonly requestId: string;
  }
}

/** The header that carries the request id in, back out, and on to every upstream call. */
export const REQUEST_ID_HEADER = 'x-request-id';

const SANE_REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/** The client's `X-Request-ID` when it is short and plain (safe to log and echo), else a new UUID. */
export function requestIdOf(offered: string | string[] | undefined): string {
  return typeof offered === 'string' && SANE_REQUEST_ID.test(offered) ? offered : randomUUID();
}

/**
 * The request id: read or created when the request arrives, echoed on the response. The upstream
 * client sends it on with every call (see the forwarding interceptor), GraphQL errors carry it.
 */
export function requestIdPlugin(): GatewayPlugin {
  return {
    name: 'request-id',
    phases: {
      onRequest({ req, res, state }) {
        const requestId = requestIdOf(req.headers[REQUEST_ID_HEADER]);
        state.set('requestId', requestId);
        res.setHeader(REQUEST_ID_HEADER, requestId);
        return undefined;
      },
    },
  };
}

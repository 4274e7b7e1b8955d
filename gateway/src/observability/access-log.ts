import type { Socket } from 'node:net';
import { rawPathOf, responseStatus, type Exchange, type GatewayPlugin } from '../pipeline/pipeline.js';
import { bodyBytesReceived } from '../request-body.js';
import { AttemptLog, type CacheLayer, type UpstreamAttempt } from './attempts.js';
import { trustedInfoWriter, type Logger } from './logger.js';
import { routeLabel, secondsSince } from './metrics.js';
import { scrubText } from './redact.js';

declare module '../pipeline/state.js' {
  interface RequestVariables {
    /** onRequest (access log): every upstream call made for the request. */
    readonly upstreamAttempts: AttemptLog;
    /** onRequest (access log): the connection's bytes written before this request (its response's are the rest). */
    readonly bytesWrittenBefore: number;
    /** face (GraphQL response cache): the whole answer was a stored one, from this layer. */
    readonly cacheLayer: CacheLayer;
  }
}

/** Upstream attempts listed one by one in a line; past this, only their number. */
const MAX_LISTED_ATTEMPTS = 10;
const MAX_PATH_LENGTH = 256;

/** One request's access line: what an operator needs to find it, and nothing a client could hide a secret in. */
export interface AccessLine {
  readonly requestId: string;
  readonly traceId: string | undefined;
  readonly method: string;
  /** The metrics' route label: a route-table prefix, /graphql, an own endpoint, or "unmatched". */
  readonly route: string;
  /** The path as requested, without its query string (which may carry anything). */
  readonly path: string;
  /** The status sent; 499 when the client left before any answer. */
  readonly status: number;
  readonly durationMs: number;
  /** Body bytes read from the client. */
  readonly bytesIn: number;
  /** Bytes written to the client, head included. */
  readonly bytesOut: number;
  readonly client: string | undefined;
  /** `sub` of a verified token. */
  readonly user: string | undefined;
  readonly face: 'rest' | 'graphql' | 'own' | undefined;
  readonly graphql: { readonly operation: string; readonly type: string } | undefined;
  /** The whole answer was a stored GraphQL response, from this process's layer or the one replicas share (Redis). */
  readonly cache: CacheLayer | undefined;
  /** The upstream calls, each with its status and time; one answered from the cache of upstream answers says from which layer. */
  readonly upstream: readonly UpstreamAttempt[] | undefined;
  /** Set when there were more attempts than listed. */
  readonly upstreamCalls: number | undefined;
  /** The response did not finish (the client left, or the upstream broke off mid-answer). */
  readonly incomplete: true | undefined;
}

function bytesWritten(socket: Socket | null): number {
  return typeof socket?.bytesWritten === 'number' ? socket.bytesWritten : 0;
}

/**
 * The access line of an exchange whose response is over. Always the same shape (absent fields are
 * undefined, which the JSON leaves out): a line per request stays on the fast path.
 */
export function accessLineOf({ req, res, state }: Exchange, durationMs: number, bytesOut: number): AccessLine {
  const route = state.peek('route');
  const auth = state.peek('auth');
  const operation = state.peek('graphqlOperation');
  const attempts = state.peek('upstreamAttempts')?.attempts ?? [];
  return {
    requestId: state.peek('requestId') ?? '',
    traceId: state.peek('trace')?.traceId,
    method: req.method ?? 'GET',
    route: routeLabel(route),
    path: scrubText(rawPathOf(req).slice(0, MAX_PATH_LENGTH)),
    status: responseStatus(res),
    durationMs,
    bytesIn: bodyBytesReceived(req),
    bytesOut,
    client: state.peek('forwarded')?.clientIp,
    user: auth?.kind === 'verified' ? auth.identity.sub : undefined,
    face: route?.face,
    graphql: operation ? { operation: operation.name, type: operation.type } : undefined,
    cache: state.peek('cacheLayer'),
    upstream: attempts.length > 0 ? attempts.slice(0, MAX_LISTED_ATTEMPTS) : undefined,
    upstreamCalls: attempts.length > MAX_LISTED_ATTEMPTS ? attempts.length : undefined,
    incomplete: res.writableFinished ? undefined : true,
  };
}

/**
 * ACCESS_LOG: exactly one `info` line per request when it is over — its response sent, failed, or
 * abandoned by the client, and its upstream calls ended (those of a client that left are being
 * cancelled; `settleMs` bounds the wait) — whichever phase answered it. Built from the request's state
 * only: no header, query string or body is ever in it.
 */
export function accessLogPlugin(logger: Logger, settleMs: number): GatewayPlugin {
  const writeLine = trustedInfoWriter(logger);
  return {
    name: 'access-log',
    phases: {
      onRequest({ req, state }) {
        state.set('bytesWrittenBefore', bytesWritten(req.socket));
        state.set('upstreamAttempts', new AttemptLog());
        return undefined;
      },
    },
    onResponse(exchange) {
      // Measured at the response's end; written once the upstream calls have ended too.
      const durationMs = Math.round(secondsSince(exchange.started) * 10_000) / 10;
      const bytesOut = Math.max(0, bytesWritten(exchange.req.socket) - (exchange.state.peek('bytesWrittenBefore') ?? 0));
      const write = () => {
        const line = accessLineOf(exchange, durationMs, bytesOut);
        writeLine(line, `${line.method} ${line.path} ${line.status} ${line.durationMs} ms`);
      };
      const attempts = exchange.state.peek('upstreamAttempts');
      if (!attempts || attempts.settled) {
        write();
        return;
      }
      // Calls still ending (a client that left: they are being cancelled); a call that never reports is not waited for.
      let written = false;
      const once = () => {
        if (written) return;
        written = true;
        clearTimeout(deadline);
        write();
      };
      const deadline = setTimeout(once, settleMs);
      deadline.unref();
      attempts.whenSettled(once);
    },
  };
}

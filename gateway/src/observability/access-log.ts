import type { Socket } from 'node:net';
import { responseStatus, type Exchange, type GatewayPlugin } from '../pipeline/pipeline.js';
import { bodyBytesReceived } from '../request-body.js';
import { rawPathOf } from '../routing.js';
import { AttemptLog, type UpstreamAttempt } from '../upstream/call.js';
import { trustedLine, type Logger } from './logger.js';
import { routeLabel, secondsSince } from './metrics.js';
import { scrubText } from './redact.js';

/** Upstream attempts listed one by one in a line; past this, only their number. */
const MAX_LISTED_ATTEMPTS = 10;
const MAX_PATH_LENGTH = 256;

/** One request's access line: what an operator needs to find it, and nothing a client could hide a secret in. */
export interface AccessLine {
  readonly requestId: string;
  readonly traceId?: string;
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
  readonly client?: string;
  /** `sub` of a verified token. */
  readonly user?: string;
  readonly face?: 'rest' | 'graphql' | 'own';
  readonly graphql?: { readonly operation: string; readonly type: string };
  readonly upstream?: readonly UpstreamAttempt[];
  /** Set when there were more attempts than listed. */
  readonly upstreamCalls?: number;
  /** The response did not finish (the client left, or the upstream broke off mid-answer). */
  readonly incomplete?: true;
}

function bytesWritten(socket: Socket | null): number {
  return typeof socket?.bytesWritten === 'number' ? socket.bytesWritten : 0;
}

/** The access line of an exchange whose response is over (but for its duration and bytes out, measured at its end). */
export function accessLineOf({ req, res, state }: Exchange): Omit<AccessLine, 'durationMs' | 'bytesOut'> {
  const requestId = state.peek('requestId') ?? '';
  const traceId = state.peek('trace')?.traceId;
  const route = state.peek('route');
  const auth = state.peek('auth');
  const operation = state.peek('graphqlOperation');
  const attempts = state.peek('upstreamAttempts')?.attempts ?? [];
  return {
    requestId,
    ...(traceId ? { traceId } : {}),
    method: req.method ?? 'GET',
    route: routeLabel(route),
    path: scrubText(rawPathOf(req).slice(0, MAX_PATH_LENGTH)),
    status: responseStatus(res),
    bytesIn: bodyBytesReceived(req),
    ...(state.peek('forwarded') ? { client: state.peek('forwarded')?.clientIp } : {}),
    ...(auth?.kind === 'verified' ? { user: auth.identity.sub } : {}),
    ...(route ? { face: route.face } : {}),
    ...(operation ? { graphql: { operation: operation.name, type: operation.type } } : {}),
    ...(attempts.length > 0 ? { upstream: attempts.slice(0, MAX_LISTED_ATTEMPTS) } : {}),
    ...(attempts.length > MAX_LISTED_ATTEMPTS ? { upstreamCalls: attempts.length } : {}),
    ...(res.writableFinished ? {} : { incomplete: true as const }),
  };
}

/**
 * ACCESS_LOG: exactly one `info` line per request when it is over — its response sent, failed, or
 * abandoned by the client, and its upstream calls ended (those of a client that left are being
 * cancelled; `settleMs` bounds the wait) — whichever phase answered it. Built from the request's state
 * only: no header, query string or body is ever in it.
 */
export function accessLogPlugin(logger: Logger, settleMs: number): GatewayPlugin {
  const bytesOutAtStart = new WeakMap<Exchange, number>();
  return {
    name: 'access-log',
    phases: {
      onRequest(exchange) {
        bytesOutAtStart.set(exchange, bytesWritten(exchange.req.socket));
        exchange.state.set('upstreamAttempts', new AttemptLog());
        return undefined;
      },
    },
    onResponse(exchange) {
      const bytesOutBefore = bytesOutAtStart.get(exchange) ?? 0;
      // Measured now, at the response's end; written once the calls have ended too.
      const durationMs = Math.round(secondsSince(exchange.started) * 10_000) / 10;
      const bytesOut = Math.max(0, bytesWritten(exchange.req.socket) - bytesOutBefore);
      let written = false;
      const write = () => {
        if (written) return;
        written = true;
        clearTimeout(deadline);
        const line = { ...accessLineOf(exchange), durationMs, bytesOut };
        logger.info(trustedLine(line), `${line.method} ${line.path} ${line.status} ${line.durationMs} ms`);
      };
      const deadline = setTimeout(write, settleMs);
      deadline.unref();
      const attempts = exchange.state.peek('upstreamAttempts');
      if (attempts) attempts.whenSettled(write);
      else write();
    },
  };
}

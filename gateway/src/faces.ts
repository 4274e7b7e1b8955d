import type { Identity } from './auth/identity.js';
import { ANSWERED, type Exchange, type GatewayPlugin, type StepResult } from './pipeline/pipeline.js';
import type { Caller } from './upstream/call.js';

/** A face answers every request routed to it (or throws the catalogue's error, at once or as the rejection). */
export type Face = (exchange: Exchange) => Promise<void>;

const answered = (): StepResult => ANSWERED;

/** The last phase: the face the route chose answers. */
export function facesPlugin(faces: { readonly rest: Face; readonly graphql?: Face }): GatewayPlugin {
  return {
    name: 'faces',
    phases: {
      face(exchange): Promise<StepResult> {
        const route = exchange.state.get('route');
        const face = route.face === 'rest' ? faces.rest : route.face === 'graphql' ? faces.graphql : undefined;
        if (!face) throw new Error(`no face answers a route of the ${route.face} face`);
        return face(exchange).then(answered);
      },
    },
  };
}

/**
 * The caller of a client request as the upstream client needs it, the same for both faces. Built by
 * assignment (every REST request makes one): absent members stay absent, with no object spread for each.
 */
export function callerOf({ req, state }: Exchange, identity: Identity | undefined): Caller {
  const trace = state.peek('trace');
  const attempts = state.peek('upstreamAttempts');
  const caller: { -readonly [K in keyof Caller]: Caller[K] } = { requestId: state.get('requestId'), forwarded: state.get('forwarded') };
  if (identity) caller.identity = identity;
  if (req.headers.authorization !== undefined) caller.authorization = req.headers.authorization;
  if (trace?.forward) caller.trace = trace.forward;
  if (trace?.span) caller.traceParent = trace.span;
  if (attempts) caller.attempts = attempts;
  return caller;
}

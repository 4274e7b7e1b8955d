import type { Identity } from './auth/identity.js';
import { ANSWERED, type Exchange, type GatewayPlugin, type StepResult } from './pipeline/pipeline.js';
import type { Caller } from './upstream/call.js';

/** A face answers every request routed to it (or throws the catalogue's error). */
export type Face = (exchange: Exchange) => Promise<void>;

/** The last phase: the face the route chose answers. */
export function facesPlugin(faces: { readonly rest: Face; readonly graphql?: Face }): GatewayPlugin {
  return {
    name: 'faces',
    phases: {
      async face(exchange): Promise<StepResult> {
        const route = exchange.state.get('route');
        const face = route.face === 'rest' ? faces.rest : route.face === 'graphql' ? faces.graphql : undefined;
        if (!face) throw new Error(`no face answers a route of the ${route.face} face`);
        await face(exchange);
        return ANSWERED;
      },
    },
  };
}

/** The caller of a client request as the upstream client needs it, the same for both faces. */
export function callerOf({ req, state }: Exchange, identity: Identity | undefined): Caller {
  const trace = state.peek('trace');
  const attempts = state.peek('upstreamAttempts');
  return {
    requestId: state.get('requestId'),
    forwarded: state.get('forwarded'),
    ...(identity ? { identity } : {}),
    ...(req.headers.authorization !== undefined ? { authorization: req.headers.authorization } : {}),
    ...(trace?.forward ? { trace: trace.forward } : {}),
    ...(trace?.span ? { traceParent: trace.span } : {}),
    ...(attempts ? { attempts } : {}),
  };
}

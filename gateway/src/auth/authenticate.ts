import type { IncomingHttpHeaders } from 'node:http';
import { GatewayError } from '../errors.js';
import type { GatewayPlugin } from '../pipeline/pipeline.js';
import { accessOf } from '../routing/router.js';
import type { Identity } from './identity.js';
import { invalidToken, type TokenVerifier } from './verifier.js';

declare module '../pipeline/state.js' {
  interface RequestVariables {
    /** authenticate: the caller, as far as the route needs to know. */
    readonly auth: AuthOutcome;
  }
}

const BEARER = /^Bearer +([^\s]+) *$/i;
const BEARER_SCHEME = /^Bearer(?:\s|$)/i;

/**
 * What authentication found. `unchecked`: the route does not care who calls (public routes, unknown
 * paths), so a token is not even looked at. `refused`: a token was sent and is not acceptable (or its
 * keys could not be fetched); the face answers with that error after rate limiting.
 */
export type AuthOutcome =
  | { readonly kind: 'unchecked' }
  | { readonly kind: 'anonymous' }
  | { readonly kind: 'verified'; readonly identity: Identity }
  | { readonly kind: 'refused'; readonly error: GatewayError };

const UNCHECKED: AuthOutcome = { kind: 'unchecked' };
const ANONYMOUS: AuthOutcome = { kind: 'anonymous' };

export function authenticationRequired(detail = 'Authentication required'): GatewayError {
  return new GatewayError('UNAUTHENTICATED', detail, { headers: { 'www-authenticate': 'Bearer' } });
}

/**
 * The caller from `Authorization: Bearer <jwt>`: anonymous without the header; a header that is sent
 * must hold a valid bearer token. A token verified before is recognised without a promise (most
 * requests: an app sends the same token until it expires). Only the catalogue's errors become a
 * refusal: anything else is a bug and goes on up.
 */
export function authenticate(headers: IncomingHttpHeaders, verifier: TokenVerifier): AuthOutcome | Promise<AuthOutcome> {
  const authorization = headers.authorization;
  if (authorization === undefined) return ANONYMOUS;
  // Another scheme (Basic, say) is no token at all: a plain challenge, no error code (RFC 6750 3.1).
  if (!BEARER_SCHEME.test(authorization)) return { kind: 'refused', error: authenticationRequired('Only Bearer tokens are accepted') };
  const token = BEARER.exec(authorization)?.[1];
  if (!token) return { kind: 'refused', error: invalidToken('The Authorization header must be Bearer and one token') };
  const known = verifier.cache.get(token);
  return known ? { kind: 'verified', identity: known } : verified(token, verifier);
}

async function verified(token: string, verifier: TokenVerifier): Promise<AuthOutcome> {
  try {
    return { kind: 'verified', identity: await verifier.verify(token) };
  } catch (error) {
    if (error instanceof GatewayError) return { kind: 'refused', error };
    throw error;
  }
}

/**
 * The identity a face may act for. `required`: an anonymous caller is a 401. A refused token is always
 * answered with its own error: it never quietly becomes an anonymous call.
 */
export function identityOf(auth: AuthOutcome, required: boolean): Identity | undefined {
  if (auth.kind === 'refused') throw auth.error;
  if (auth.kind === 'verified') return auth.identity;
  if (required) throw authenticationRequired();
  return undefined;
}

/** Verifies the caller once per request, and only where the route needs to know who calls. */
export function authenticationPlugin(verifier: TokenVerifier): GatewayPlugin {
  return {
    name: 'authentication',
    phases: {
      authenticate({ req, state }) {
        const access = accessOf(state.get('route'));
        if (access === undefined || access === 'public') {
          state.set('auth', UNCHECKED);
          return undefined;
        }
        const outcome = authenticate(req.headers, verifier);
        if (!(outcome instanceof Promise)) {
          state.set('auth', outcome);
          return undefined;
        }
        return outcome.then((settled) => {
          state.set('auth', settled);
          return undefined;
        });
      },
    },
  };
}

import type { IncomingHttpHeaders } from 'node:http';
import { GatewayError } from '../errors.js';
import type { Identity } from './identity.js';
import { invalidToken, type TokenVerifier } from './verifier.js';

const BEARER = /^Bearer +([^\s]+) *$/i;

export function authenticationRequired(): GatewayError {
  return new GatewayError('UNAUTHENTICATED', 'Authentication required', { 'www-authenticate': 'Bearer' });
}

/**
 * The caller's identity from `Authorization: Bearer <jwt>`, or undefined when no Authorization header
 * was sent. A header that is sent must hold a valid bearer token: anything else is a 401.
 */
export async function identityFromHeaders(headers: IncomingHttpHeaders, verifier: TokenVerifier): Promise<Identity | undefined> {
  const authorization = headers.authorization;
  if (authorization === undefined) return undefined;
  const token = BEARER.exec(authorization)?.[1];
  if (!token) throw invalidToken('The Authorization header must be "Bearer <token>"');
  return verifier.verify(token);
}

import { webcrypto } from 'node:crypto';
import { createRemoteJWKSet, errors, jwtVerify, type CryptoKey, type JWTPayload, type JWTVerifyGetKey } from 'jose';
import { LRUCache } from 'lru-cache';
import type { JwtConfig } from '../config.js';
import { GatewayError } from '../errors.js';
import type { Identity } from './identity.js';
import { TokenCache } from './token-cache.js';

/** Tokens longer than this are refused before any parsing (real access tokens are far smaller). */
export const MAX_TOKEN_LENGTH = 8192;
const CLOCK_TOLERANCE_SECONDS = 5;
/** An unknown kid fetches the key set again at most this often (per kid). */
const KID_REFETCH_MS = 30_000;
const MIN_REFETCH_INTERVAL_MS = 1000;
/** `sub` becomes the `X-User-ID` header: visible ASCII only, so it cannot smuggle a header. */
const SUBJECT = /^[\x21-\x7e]{1,256}$/;
/** Roles are joined with "," into `X-User-Roles`: a role with a comma or space could forge another. */
const ROLE = /^[A-Za-z0-9_.:-]{1,64}$/;
const MAX_ROLES = 64;

const HMAC_HASHES: Record<string, string> = { HS256: 'SHA-256', HS384: 'SHA-384', HS512: 'SHA-512' };

/**
 * A 401 for a token that was sent but is not acceptable. The description goes into a quoted string,
 * where RFC 6750 3 allows no `"` or `\`.
 */
export function invalidToken(detail: string): GatewayError {
  const description = detail.replace(/[^\x20-\x7e]|["\\]/g, "'");
  return new GatewayError('UNAUTHENTICATED', detail, { headers: { 'www-authenticate': `Bearer error="invalid_token", error_description="${description}"` } });
}

function keysUnavailable(cause: unknown): GatewayError {
  return new GatewayError('UPSTREAM_UNAVAILABLE', 'Token signing keys are unavailable', { cause });
}

/**
 * jose's verdict as the catalogue's kind: what is wrong with the token (401), or the key set that could
 * not be fetched (503). Anything else is not a verdict on the token and goes on up unchanged.
 */
function describe(error: unknown): unknown {
  if (error instanceof errors.JWTExpired) return invalidToken('Token has expired');
  if (error instanceof errors.JWTClaimValidationFailed) {
    if (error.claim === 'nbf') return invalidToken('Token is not valid yet');
    if (error.claim === 'exp') return invalidToken('Token has no expiry');
    if (error.claim === 'sub') return invalidToken('Token has no subject');
    if (error.claim === 'iss') return invalidToken('Token issuer is not accepted');
    if (error.claim === 'aud') return invalidToken('Token audience is not accepted');
    return invalidToken('Token claims are invalid');
  }
  if (error instanceof errors.JOSEAlgNotAllowed || error instanceof errors.JOSENotSupported) return invalidToken('Token algorithm is not accepted');
  if (error instanceof errors.JWSSignatureVerificationFailed) return invalidToken('Token signature is invalid');
  if (error instanceof errors.JWKSNoMatchingKey || error instanceof errors.JWKSMultipleMatchingKeys) return invalidToken('Token signing key is unknown');
  // The key set's fetch timed out, failed or answered something that is not a key set.
  if (error instanceof errors.JWKSTimeout || error instanceof errors.JWKSInvalid || (error instanceof errors.JOSEError && error.code === 'ERR_JOSE_GENERIC')) {
    return keysUnavailable(error);
  }
  if (error instanceof errors.JOSEError) return invalidToken('Token is malformed');
  if (error instanceof TypeError && error.message === 'fetch failed') return keysUnavailable(error);
  return error;
}

function identityOf(payload: JWTPayload): Identity {
  const { sub, exp, roles } = payload;
  if (typeof sub !== 'string' || !SUBJECT.test(sub)) throw invalidToken('Token has no valid subject');
  const validRoles =
    Array.isArray(roles) && roles.length <= MAX_ROLES && roles.every((role): role is string => typeof role === 'string' && ROLE.test(role)) ? [...new Set(roles)] : [];
  return { sub, roles: validRoles, expiresAtMs: (exp as number) * 1000 };
}

async function hmacKeys(secret: string, algorithms: readonly string[]): Promise<Map<string, CryptoKey>> {
  const keys = new Map<string, CryptoKey>();
  const raw = new TextEncoder().encode(secret);
  for (const algorithm of algorithms) {
    const hash = HMAC_HASHES[algorithm];
    if (hash) keys.set(algorithm, (await webcrypto.subtle.importKey('raw', raw, { name: 'HMAC', hash }, false, ['verify'])) as CryptoKey);
  }
  return keys;
}

export interface TokenVerifier {
  /** The identity in a bearer token, from the cache when this exact token was verified before. */
  verify(token: string): Promise<Identity>;
  readonly cache: TokenCache;
}

/**
 * Verifies JWTs with jose: algorithms from the configured allow-list only, `exp` and `sub` required,
 * `nbf` honoured, `iss` / `aud` enforced when configured. HMAC keys are imported once; a JWKS is
 * fetched remotely, cached, and fetched again at once when a token names an unknown `kid` (see keyFromSet).
 */
export interface VerifierOptions {
  readonly cache?: TokenCache;
  /**
   * How often an unknown `kid` may fetch the key set again: once per kid every `perKidMs` (default 30 s),
   * once every `minIntervalMs` in all (default 1 s). Tests that rotate keys on purpose set them to 0.
   */
  readonly refetch?: { readonly perKidMs: number; readonly minIntervalMs: number };
}

export async function createTokenVerifier(config: JwtConfig, options: VerifierOptions = {}): Promise<TokenVerifier> {
  const cache = options.cache ?? new TokenCache();
  const hmac = config.secret ? await hmacKeys(config.secret, config.algorithms) : new Map<string, CryptoKey>();
  const { perKidMs, minIntervalMs } = options.refetch ?? { perKidMs: KID_REFETCH_MS, minIntervalMs: MIN_REFETCH_INTERVAL_MS };
  const jwks = config.jwksUrl ? createRemoteJWKSet(new URL(config.jwksUrl), { cooldownDuration: perKidMs, cacheMaxAge: 10 * 60_000, timeoutDuration: 5000 }) : undefined;
  // Kids the key set was fetched again for, and when the last such fetch was.
  const refetchedFor = perKidMs > 0 ? new LRUCache<string, true>({ max: 1000, ttl: perKidMs }) : undefined;
  let lastRefetch = 0;

  /**
   * A kid the cached key set does not have may be a key rotated in since it was fetched: the set is
   * fetched again at once, but at most once per kid every 30 s and once a second in all, so that
   * tokens with made-up kids cannot turn into a flood of fetches.
   */
  async function keyFromSet(remote: NonNullable<typeof jwks>, header: Parameters<JWTVerifyGetKey>[0], token: Parameters<JWTVerifyGetKey>[1]): Promise<CryptoKey> {
    try {
      return await remote(header, token);
    } catch (error) {
      const kid = header.kid;
      if (!(error instanceof errors.JWKSNoMatchingKey) || kid === undefined || refetchedFor?.has(kid) || Date.now() - lastRefetch < minIntervalMs) throw error;
      refetchedFor?.set(kid, true);
      lastRefetch = Date.now();
      await remote.reload();
      return remote(header, token);
    }
  }

  const resolveKey: JWTVerifyGetKey = async (header, token) => {
    const key = hmac.get(header.alg ?? '');
    if (key) return key;
    if (jwks && !header.alg?.startsWith('HS')) return keyFromSet(jwks, header, token);
    throw new errors.JOSEAlgNotAllowed('"alg" (Algorithm) Header Parameter value not allowed');
  };

  const verifyOptions = {
    algorithms: [...config.algorithms],
    clockTolerance: CLOCK_TOLERANCE_SECONDS,
    requiredClaims: ['exp', 'sub'],
    ...(config.issuer !== undefined ? { issuer: config.issuer } : {}),
    ...(config.audience !== undefined ? { audience: config.audience } : {}),
  };

  return {
    cache,
    async verify(token) {
      const cached = cache.get(token);
      if (cached) return cached;
      if (token.length > MAX_TOKEN_LENGTH) throw invalidToken('Token is too large');
      let payload: JWTPayload;
      try {
        ({ payload } = await jwtVerify(token, resolveKey, verifyOptions));
      } catch (error) {
        throw describe(error);
      }
      const identity = identityOf(payload);
      cache.set(token, identity);
      return identity;
    },
  };
}

import { randomUUID } from 'node:crypto';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey } from 'jose';
import type { Jwks } from '../../shared/records.js';
import type { ServiceEnvironment } from './environment.js';

interface KeyPair {
  readonly kid: string;
  readonly privateKey: CryptoKey;
  readonly publicJwk: Jwks['keys'][number];
}

/** How many retired public keys stay published after the signing key (tokens they signed still verify). */
const RETIRED_KEYS = 2;

export interface TokenSigner {
  sign(claims: { sub: string; roles: readonly string[] }): Promise<string>;
  /** The public key set, newest first: the next key, the signing key, retired ones (empty for HS256). */
  jwks(): Jwks;
  /** Starts signing with the published next key and publishes a new next one; false for HS256. */
  rotate(): Promise<boolean>;
}

async function newKeyPair(): Promise<KeyPair> {
  const { privateKey, publicKey } = await generateKeyPair('ES256');
  const kid = randomUUID();
  // An EC key exports with kty "EC" (the key set's members must name their type).
  return { kid, privateKey, publicJwk: { kty: 'EC', ...(await exportJWK(publicKey)), kid, alg: 'ES256', use: 'sig' } };
}

/**
 * Signs access tokens with HS256 and the shared secret, or with ES256 keys that can be rotated. The
 * next key is published before it signs anything, so a verifier that fetched the key set since the
 * last rotation already knows the key of every token after the next one.
 */
export async function createTokenSigner(env: ServiceEnvironment): Promise<TokenSigner> {
  const secret = new TextEncoder().encode(env.jwtSecret);
  // Newest first: the next key, the signing key, then retired ones.
  const keys: KeyPair[] = env.tokenAlgorithm === 'ES256' ? [await newKeyPair(), await newKeyPair()] : [];

  return {
    async sign({ sub, roles }) {
      const current = keys[1];
      let jwt = new SignJWT({ roles: [...roles] })
        .setProtectedHeader(current ? { alg: 'ES256', typ: 'JWT', kid: current.kid } : { alg: 'HS256', typ: 'JWT' })
        .setSubject(sub)
        .setIssuedAt()
        .setExpirationTime(`${env.accessTokenTtlSeconds}s`);
      if (env.jwtIssuer) jwt = jwt.setIssuer(env.jwtIssuer);
      if (env.jwtAudience) jwt = jwt.setAudience(env.jwtAudience);
      return jwt.sign(current ? current.privateKey : secret);
    },
    jwks: () => ({ keys: keys.map((key) => key.publicJwk) }),
    async rotate() {
      if (keys.length === 0) return false;
      keys.unshift(await newKeyPair());
      keys.length = Math.min(keys.length, 2 + RETIRED_KEYS);
      return true;
    },
  };
}

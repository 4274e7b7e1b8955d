import { randomUUID } from 'node:crypto';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK } from 'jose';
import type { ServiceEnvironment } from './environment.js';

interface KeyPair {
  readonly kid: string;
  readonly privateKey: CryptoKey;
  readonly publicJwk: JWK;
}

/** How many public keys stay published: the signing key and the ones before it. */
const PUBLISHED_KEYS = 3;

export interface TokenSigner {
  sign(claims: { sub: string; roles: readonly string[] }): Promise<string>;
  /** The public key set, newest first (empty for HS256). */
  jwks(): { keys: JWK[] };
  /** Starts signing with a new ES256 key; false for HS256, which has no key pair. */
  rotate(): Promise<boolean>;
}

async function newKeyPair(): Promise<KeyPair> {
  const { privateKey, publicKey } = await generateKeyPair('ES256');
  const kid = randomUUID();
  return { kid, privateKey, publicJwk: { ...(await exportJWK(publicKey)), kid, alg: 'ES256', use: 'sig' } };
}

/** Signs access tokens with HS256 and the shared secret, or with ES256 keys that can be rotated. */
export async function createTokenSigner(env: ServiceEnvironment): Promise<TokenSigner> {
  const secret = new TextEncoder().encode(env.jwtSecret);
  const keys: KeyPair[] = env.tokenAlgorithm === 'ES256' ? [await newKeyPair()] : [];

  return {
    async sign({ sub, roles }) {
      const current = keys[0];
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
      keys.length = Math.min(keys.length, PUBLISHED_KEYS);
      return true;
    },
  };
}

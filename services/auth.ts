import { randomBytes, scrypt, timingSafeEqual, type BinaryLike, type ScryptOptions } from 'node:crypto';
import { callService } from './lib/client.js';
import { HttpError } from './lib/errors.js';
import type { ServiceEnvironment } from './lib/environment.js';
import type { ServiceDefinition } from './lib/service.js';
import { createTokenSigner } from './lib/signing.js';
import { DEMO_USERS } from './data/catalog.js';
import { specPath } from '../gateway/src/upstreams.js';

interface Credential {
  userId: string;
  salt: Buffer;
  hash: Buffer;
}

interface Profile {
  id: string;
  username: string;
  email?: string;
  roles: string[];
}

/** A refresh token's grant; every token rotated from the same login shares its `family`. */
interface RefreshGrant {
  userId: string;
  expiresAtMs: number;
  family: string;
}

const SCRYPT_KEY_LENGTH = 64;
const SCRYPT_OPTIONS: ScryptOptions = { N: 16384, r: 8, p: 1 };
const REFRESH_TTL_MS = 7 * 24 * 60 * 60 * 1000;
const INVALID_CREDENTIALS = 'Incorrect username or password';

function scryptHash(password: BinaryLike, salt: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    scrypt(password, salt, SCRYPT_KEY_LENGTH, SCRYPT_OPTIONS, (error, key) => (error ? reject(error) : resolve(key)));
  });
}

async function hashPassword(userId: string, password: string): Promise<Credential> {
  const salt = randomBytes(16);
  return { userId, salt, hash: await scryptHash(password, salt) };
}

export async function authService(env: ServiceEnvironment): Promise<ServiceDefinition> {
  const credentials = new Map<string, Credential>();
  for (const user of DEMO_USERS) credentials.set(user.username, await hashPassword(user.id, user.password));
  // Unknown usernames are checked against this too, so a miss costs the same time as a wrong password.
  const decoy = await hashPassword('', randomBytes(16).toString('hex'));
  const refreshGrants = new Map<string, RefreshGrant>();
  // Refresh tokens already exchanged, by family: one used twice means it was stolen (RFC 9700 4.14.2).
  const exchanged = new Map<string, { family: string; expiresAtMs: number }>();
  let nextUserId = Math.max(...DEMO_USERS.map((user) => Number(user.id))) + 1;
  const signer = await createTokenSigner(env);

  async function profileOf(userId: string): Promise<Profile> {
    const answer = await callService<Profile>('user management', env.urls.users, `/internal/users/${encodeURIComponent(userId)}`);
    if (answer.status === 404) throw new HttpError(401, INVALID_CREDENTIALS);
    if (answer.status !== 200) throw new HttpError(503, 'The user management service is unavailable');
    return answer.body;
  }

  function revokeFamily(family: string): void {
    for (const [token, grant] of refreshGrants) if (grant.family === family) refreshGrants.delete(token);
  }

  async function tokensFor(profile: Profile, family = randomBytes(16).toString('base64url')) {
    const refreshToken = randomBytes(32).toString('base64url');
    refreshGrants.set(refreshToken, { userId: profile.id, expiresAtMs: Date.now() + REFRESH_TTL_MS, family });
    return {
      access_token: await signer.sign({ sub: profile.id, roles: profile.roles }),
      token_type: 'bearer',
      expires_in: env.accessTokenTtlSeconds,
      refresh_token: refreshToken,
    };
  }

  return {
    name: 'auth',
    spec: specPath('auth'),
    handlers: {
      async login({ body }) {
        const { username, password } = body as { username: string; password: string };
        const credential = credentials.get(username);
        const hash = await scryptHash(password, (credential ?? decoy).salt);
        if (!credential || !timingSafeEqual(hash, credential.hash)) throw new HttpError(401, INVALID_CREDENTIALS);
        return { body: await tokensFor(await profileOf(credential.userId)) };
      },

      async register({ body }) {
        const { username, password, email } = body as { username: string; password: string; email: string };
        if (credentials.has(username)) throw new HttpError(409, 'Username already registered');
        const userId = String(nextUserId++);
        const credential = await hashPassword(userId, password);
        if (credentials.has(username)) throw new HttpError(409, 'Username already registered');
        credentials.set(username, credential);
        const answer = await callService<Profile>('user management', env.urls.users, '/internal/users', {
          method: 'POST',
          body: { id: userId, username, email },
        }).catch((error: unknown) => {
          credentials.delete(username);
          throw error;
        });
        if (answer.status !== 201) {
          credentials.delete(username);
          if (answer.status === 409) throw new HttpError(409, 'Username already registered');
          throw new HttpError(503, 'The user management service is unavailable');
        }
        return { status: 201, body: answer.body };
      },

      async refreshToken({ body }) {
        const { refresh_token: token } = body as { refresh_token: string };
        const reused = exchanged.get(token);
        if (reused) {
          // Whoever holds the family's live token now got it from a token that was used before: revoke it all.
          revokeFamily(reused.family);
          throw new HttpError(401, 'Refresh token already used: the session is revoked');
        }
        const grant = refreshGrants.get(token);
        // Rotation: a refresh token works once, whatever happens next.
        refreshGrants.delete(token);
        if (!grant || grant.expiresAtMs <= Date.now()) throw new HttpError(401, 'Invalid refresh token');
        exchanged.set(token, { family: grant.family, expiresAtMs: grant.expiresAtMs });
        for (const [old, { expiresAtMs }] of exchanged) if (expiresAtMs <= Date.now()) exchanged.delete(old);
        return { body: await tokensFor(await profileOf(grant.userId), grant.family) };
      },

      jwks: () => ({ body: signer.jwks() }),

      async rotateSigningKey() {
        if (!(await signer.rotate())) throw new HttpError(409, 'Tokens are HMAC-signed: there is no key pair to rotate');
        return { body: signer.jwks() };
      },
      authHealth: () => ({ body: { status: 'ok', service: 'auth' } }),
    },
  };
}

import { randomBytes, scrypt, timingSafeEqual, type BinaryLike, type ScryptOptions } from 'node:crypto';
import type { operations } from '../shared/api/auth.js';
import type { Token, User } from '../shared/records.js';
import { DEMO_USERS } from './data/catalog.js';
import { callService } from './lib/client.js';
import type { ServiceEnvironment } from './lib/environment.js';
import { HttpError } from './lib/errors.js';
import { defineService } from './lib/service.js';
import { createTokenSigner, type TokenSigner } from './lib/signing.js';

interface Credential {
  userId: string;
  salt: Buffer;
  hash: Buffer;
}

/** A refresh token's grant; every token rotated from the same login shares its `family`. */
interface RefreshGrant {
  userId: string;
  expiresAtMs: number;
  family: string;
}

interface AuthState {
  readonly credentials: Map<string, Credential>;
  /** Unknown usernames are checked against this too, so a miss costs the same time as a wrong password. */
  readonly decoy: Credential;
  readonly refreshGrants: Map<string, RefreshGrant>;
  /** Refresh tokens already exchanged, by family: one used twice means it was stolen (RFC 9700 4.14.2). */
  readonly exchanged: Map<string, { family: string; expiresAtMs: number }>;
  nextUserId: number;
  readonly signer: TokenSigner;
}

const SCRYPT_KEY_LENGTH = 64;
const SCRYPT_OPTIONS: ScryptOptions = { N: 16384, r: 8, p: 1 };
const REFRESH_TTL_MS = 7 * 24 * 60 * 60 * 1000;
const INVALID_CREDENTIALS = 'Incorrect username or password';
const USERNAME_TAKEN = 'Username already registered';

function scryptHash(password: BinaryLike, salt: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    scrypt(password, salt, SCRYPT_KEY_LENGTH, SCRYPT_OPTIONS, (error, key) => (error ? reject(error) : resolve(key)));
  });
}

async function hashPassword(userId: string, password: string): Promise<Credential> {
  const salt = randomBytes(16);
  return { userId, salt, hash: await scryptHash(password, salt) };
}

function profileOf(env: ServiceEnvironment, userId: string): Promise<User> {
  return callService<User>(env, 'users', `/internal/users/${encodeURIComponent(userId)}`, {
    on: {
      404: () => {
        throw new HttpError(401, INVALID_CREDENTIALS);
      },
    },
  });
}

function revokeFamily({ refreshGrants }: AuthState, family: string): void {
  for (const [token, grant] of refreshGrants) if (grant.family === family) refreshGrants.delete(token);
}

async function tokensFor(state: AuthState, env: ServiceEnvironment, profile: User, family = randomBytes(16).toString('base64url')): Promise<Token> {
  const refreshToken = randomBytes(32).toString('base64url');
  state.refreshGrants.set(refreshToken, { userId: profile.id, expiresAtMs: Date.now() + REFRESH_TTL_MS, family });
  return {
    access_token: await state.signer.sign({ sub: profile.id, roles: profile.roles }),
    token_type: 'bearer',
    expires_in: env.accessTokenTtlSeconds,
    refresh_token: refreshToken,
  };
}

/**
 * The demo accounts' credentials and the decoy, hashed once a process (scrypt is slow by design): every
 * start of the service in this process gets its own copy of the map.
 */
let demoCredentials: Promise<{ readonly byUsername: ReadonlyMap<string, Credential>; readonly decoy: Credential }> | undefined;
function hashedDemoCredentials(): NonNullable<typeof demoCredentials> {
  demoCredentials ??= (async () => {
    const byUsername = new Map<string, Credential>();
    for (const user of DEMO_USERS) byUsername.set(user.username, await hashPassword(user.id, user.password));
    return { byUsername, decoy: await hashPassword('', randomBytes(16).toString('hex')) };
  })();
  return demoCredentials;
}

export const authService = defineService<operations>()({
  name: 'auth',
  state: async (env): Promise<AuthState> => {
    const { byUsername, decoy } = await hashedDemoCredentials();
    return {
      credentials: new Map(byUsername),
      decoy,
      refreshGrants: new Map(),
      exchanged: new Map(),
      nextUserId: Math.max(...DEMO_USERS.map((user) => Number(user.id))) + 1,
      signer: await createTokenSigner(env),
    };
  },
  handlers: {
    async login({ body: { username, password } }, { state, env }) {
      const credential = state.credentials.get(username);
      const hash = await scryptHash(password, (credential ?? state.decoy).salt);
      if (!credential || !timingSafeEqual(hash, credential.hash)) throw new HttpError(401, INVALID_CREDENTIALS);
      return { body: await tokensFor(state, env, await profileOf(env, credential.userId)) };
    },

    async register({ body: { username, password, email } }, { state, env }) {
      const { credentials } = state;
      if (credentials.has(username)) throw new HttpError(409, USERNAME_TAKEN);
      const userId = String(state.nextUserId++);
      const credential = await hashPassword(userId, password);
      if (credentials.has(username)) throw new HttpError(409, USERNAME_TAKEN);
      credentials.set(username, credential);
      try {
        const profile = await callService<User>(env, 'users', '/internal/users', {
          method: 'POST',
          body: { id: userId, username, email },
          on: {
            409: () => {
              throw new HttpError(409, USERNAME_TAKEN);
            },
          },
        });
        return { status: 201, body: profile };
      } catch (error) {
        credentials.delete(username);
        throw error;
      }
    },

    async refreshToken({ body: { refresh_token: token } }, { state, env }) {
      const reused = state.exchanged.get(token);
      if (reused) {
        // Whoever holds the family's live token now got it from a token that was used before: revoke it all.
        revokeFamily(state, reused.family);
        throw new HttpError(401, 'Refresh token already used: the session is revoked');
      }
      const grant = state.refreshGrants.get(token);
      // Rotation: a refresh token works once, whatever happens next.
      state.refreshGrants.delete(token);
      if (!grant || grant.expiresAtMs <= Date.now()) throw new HttpError(401, 'Invalid refresh token');
      state.exchanged.set(token, { family: grant.family, expiresAtMs: grant.expiresAtMs });
      for (const [old, { expiresAtMs }] of state.exchanged) if (expiresAtMs <= Date.now()) state.exchanged.delete(old);
      return { body: await tokensFor(state, env, await profileOf(env, grant.userId), grant.family) };
    },

    jwks: (_request, { state }) => ({ body: state.signer.jwks() }),

    async rotateSigningKey(_request, { state }) {
      if (!(await state.signer.rotate())) throw new HttpError(409, 'Tokens are HMAC-signed: there is no key pair to rotate');
      return { body: state.signer.jwks() };
    },
  },
});

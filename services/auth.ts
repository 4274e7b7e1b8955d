import { createHash, randomBytes, scrypt, timingSafeEqual, type BinaryLike, type ScryptOptions } from 'node:crypto';
import type { Logger } from 'pino';
import type { operations } from '../shared/api/auth.js';
import type { Token, User } from '../shared/records.js';
import { DEMO_USERS } from './data/catalog.js';
import { callService } from './lib/client.js';
import type { Database } from './lib/database.js';
import { sql } from './lib/sql.js';
import type { ServiceEnvironment } from './lib/environment.js';
import { HttpError } from './lib/errors.js';
import { defineService } from './lib/service.js';
import { createTokenSigner, type TokenSigner } from './lib/signing.js';

interface Hashed {
  readonly salt: Buffer;
  readonly hash: Buffer;
}

const SCRYPT_KEY_LENGTH = 64;
const SCRYPT_OPTIONS: ScryptOptions = { N: 16384, r: 8, p: 1 };
const REFRESH_TTL_MS = 7 * 24 * 60 * 60 * 1000;
const INVALID_CREDENTIALS = 'Incorrect username or password';
const USERNAME_TAKEN = 'Username already registered';
/** How long a registration may take at most (the call to user management is cut at 5 s): a credential pending longer was left halfway. */
const ABANDONED_AFTER = '1 minute';
const SWEEP_EVERY_MS = 60_000;
const UNDO_RETRY_MAX_MS = 5000;

function scryptHash(password: BinaryLike, salt: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    scrypt(password, salt, SCRYPT_KEY_LENGTH, SCRYPT_OPTIONS, (error, key) => (error ? reject(error) : resolve(key)));
  });
}

async function hashPassword(password: string): Promise<Hashed> {
  const salt = randomBytes(16);
  return { salt, hash: await scryptHash(password, salt) };
}

/** Refresh tokens are kept by their digest only. */
const digest = (token: string) => createHash('sha256').update(token).digest();

/** Unknown usernames are checked against this too, so a miss costs the same time as a wrong password (hashed once a process). */
let decoy: Promise<Hashed> | undefined;

function profileOf(env: ServiceEnvironment, userId: string): Promise<User> {
  return callService<User>(env, 'users', `/internal/users/${encodeURIComponent(userId)}`, {
    on: {
      404: () => {
        throw new HttpError(401, INVALID_CREDENTIALS);
      },
    },
  });
}

/**
 * Registrations that failed after their username was reserved (a pending credential), undone: the
 * profile user management may have made is removed, then the credential. Tried at once; while user
 * management cannot be reached, again and again with growing pauses, so that no account is left
 * half made. Credentials left pending by a process that stopped halfway are found by a sweep.
 */
class Undoing {
  private readonly timers = new Set<NodeJS.Timeout>();
  private stopped = false;

  constructor(
    private readonly db: Database,
    private readonly env: ServiceEnvironment,
    private readonly log: Logger,
  ) {}

  /** `profileMayExist`: false only when user management answered that it made nothing. */
  async undo(userId: string, profileMayExist: boolean, attempt = 0): Promise<void> {
    try {
      if (profileMayExist) await callService<undefined>(this.env, 'users', `/internal/users/${encodeURIComponent(userId)}`, { method: 'DELETE' });
      await this.db.rows(sql`delete from auth.credentials where user_id = ${userId} and status = 'pending'`);
    } catch (error) {
      if (this.stopped) return;
      const delayMs = Math.min(200 * 2 ** attempt, UNDO_RETRY_MAX_MS);
      this.log.warn({ err: error, userId, attempt }, `a registration that failed halfway is not undone yet: trying again in ${delayMs} ms`);
      const timer = setTimeout(() => {
        this.timers.delete(timer);
        void this.undo(userId, profileMayExist, attempt + 1);
      }, delayMs);
      timer.unref();
      this.timers.add(timer);
    }
  }

  async sweep(): Promise<void> {
    try {
      const abandoned = await this.db.rows<{ userId: string }>(sql`select user_id as "userId" from auth.credentials where status = 'pending' and created_at < now() - ${ABANDONED_AFTER}::interval`);
      await Promise.all(abandoned.map(({ userId }) => this.undo(userId, true)));
    } catch (error) {
      if (!this.stopped) this.log.warn({ err: error }, 'could not look for registrations left halfway');
    }
  }

  start(): void {
    void this.sweep();
    const timer = setInterval(() => void this.sweep(), SWEEP_EVERY_MS);
    timer.unref();
    this.timers.add(timer);
  }

  stop(): void {
    this.stopped = true;
    for (const timer of this.timers) clearTimeout(timer);
  }
}

interface AuthState {
  readonly db: Database;
  readonly decoy: Hashed;
  readonly signer: TokenSigner;
  readonly undoing: Undoing;
}

async function tokensFor({ db, signer }: AuthState, env: ServiceEnvironment, profile: User, family = randomBytes(16).toString('base64url')): Promise<Token> {
  const refreshToken = randomBytes(32).toString('base64url');
  await db.rows(sql`insert into auth.refresh_tokens (token_hash, user_id, family, expires_at) values (${digest(refreshToken)}, ${profile.id}, ${family}, ${new Date(Date.now() + REFRESH_TTL_MS)})`);
  return {
    access_token: await signer.sign({ sub: profile.id, roles: profile.roles }),
    token_type: 'bearer',
    expires_in: env.accessTokenTtlSeconds,
    refresh_token: refreshToken,
  };
}

const usernameTaken = async (db: Database, username: string) => (await db.row(sql`select 1 from auth.credentials where username = ${username}`)) !== undefined;

export const authService = defineService<operations>()({
  name: 'auth',
  database: {
    async seed(tx) {
      for (const { id, username, password } of DEMO_USERS) {
        const { salt, hash } = await hashPassword(password);
        await tx.rows(sql`insert into auth.credentials (user_id, username, salt, hash, status) values (${id}, ${username}, ${salt}, ${hash}, 'active')`);
      }
      // New accounts are numbered after the demo ones.
      await tx.rows(sql`select setval('auth.user_ids', ${Math.max(...DEMO_USERS.map((user) => Number(user.id)))})`);
    },
  },
  state: async (env, db, log): Promise<AuthState> => {
    decoy ??= hashPassword(randomBytes(16).toString('hex'));
    const undoing = new Undoing(db, env, log);
    undoing.start();
    return { db, decoy: await decoy, signer: await createTokenSigner(env), undoing };
  },
  close: (state) => state.undoing.stop(),
  handlers: {
    async login({ body: { username, password } }, { state, env }) {
      const credential = await state.db.row<{ userId: string } & Hashed>(sql`select user_id as "userId", salt, hash from auth.credentials where username = ${username} and status = 'active'`);
      const hash = await scryptHash(password, (credential ?? state.decoy).salt);
      if (!credential || !timingSafeEqual(hash, credential.hash)) throw new HttpError(401, INVALID_CREDENTIALS);
      return { body: await tokensFor(state, env, await profileOf(env, credential.userId)) };
    },

    /**
     * A registration spans two services: the credential here, the profile in user management. The
     * username is reserved first (a pending credential: the database lets one of any number of racing
     * registrations have it), then the profile is asked for; the credential becomes usable once it is
     * made, and the registration is undone when it is not, or when whether it was is unknown.
     */
    async register({ body: { username, password, email } }, { state, env }) {
      const { db } = state;
      // Before the hash, which costs: most registrations of a taken name end here.
      if (await usernameTaken(db, username)) throw new HttpError(409, USERNAME_TAKEN);
      const hashed = await hashPassword(password);
      const reserved = await db.row<{ userId: string }>(
        sql`insert into auth.credentials (user_id, username, salt, hash, status) values (nextval('auth.user_ids')::text, ${username}, ${hashed.salt}, ${hashed.hash}, 'pending')
            on conflict (username) do nothing returning user_id as "userId"`,
      );
      if (!reserved) throw new HttpError(409, USERNAME_TAKEN);
      const { userId } = reserved;
      let refused = false;
      let profile: User;
      try {
        profile = await callService<User>(env, 'users', '/internal/users', {
          method: 'POST',
          body: { id: userId, username, email },
          on: {
            409: () => {
              refused = true;
              throw new HttpError(409, USERNAME_TAKEN);
            },
          },
        });
      } catch (error) {
        await state.undoing.undo(userId, !refused);
        throw error;
      }
      await db.rows(sql`update auth.credentials set status = 'active' where user_id = ${userId}`);
      return { status: 201, body: profile };
    },

    async refreshToken({ body: { refresh_token: token } }, { state, env }) {
      const { db } = state;
      const tokenHash = digest(token);
      // Rotation: a refresh token works once, whatever happens next; of two racing uses, one claims it.
      const claimed = await db.row<{ userId: string; family: string; expiresAt: Date }>(
        sql`update auth.refresh_tokens set exchanged_at = now() where token_hash = ${tokenHash} and exchanged_at is null returning user_id as "userId", family, expires_at as "expiresAt"`,
      );
      if (!claimed) {
        const reused = await db.row<{ family: string }>(sql`select family from auth.refresh_tokens where token_hash = ${tokenHash}`);
        if (reused) {
          // Whoever holds the family's live token now got it from a token that was used before: revoke it all.
          await db.rows(sql`delete from auth.refresh_tokens where family = ${reused.family} and exchanged_at is null`);
          throw new HttpError(401, 'Refresh token already used: the session is revoked');
        }
        throw new HttpError(401, 'Invalid refresh token');
      }
      await db.rows(sql`delete from auth.refresh_tokens where expires_at <= now()`);
      if (claimed.expiresAt.getTime() <= Date.now()) throw new HttpError(401, 'Invalid refresh token');
      return { body: await tokensFor(state, env, await profileOf(env, claimed.userId), claimed.family) };
    },

    jwks: (_request, { state }) => ({ body: state.signer.jwks() }),

    async rotateSigningKey(_request, { state }) {
      if (!(await state.signer.rotate())) throw new HttpError(409, 'Tokens are HMAC-signed: there is no key pair to rotate');
      return { body: state.signer.jwks() };
    },
  },
});

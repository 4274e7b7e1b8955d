import { resolve } from 'node:path';
// The gateway's development key, so `npm start` works with no configuration.
import { DEVELOPMENT_JWT_SECRET } from '../../shared/development.js';
import { PROJECT_ROOT } from '../../shared/paths.js';
import { LOG_LEVELS, type LogLevel } from '../../shared/settings.js';
import { withSecretFiles } from '../../shared/secret-files.js';
import { DEFAULT_SERVICES_BASE_PORT, UPSTREAM_NAMES, UPSTREAMS, referenceServiceUrls, type UpstreamUrls } from '../../shared/upstreams.js';

/**
 * Where the services keep their data: DATABASE_URL's Postgres (DATABASE_PASSWORD over the URL's), else
 * the embedded one (PGlite) kept in DATA_DIR, or in memory (nothing kept) with `memory://`.
 */
export type DatabaseSettings =
  | { readonly kind: 'postgres'; readonly url: string; readonly password?: string }
  | { readonly kind: 'embedded'; readonly dataDir: string }
  | { readonly kind: 'memory' };

/** DATA_DIR's value for an embedded database that keeps nothing (tests, throwaway demos). */
export const IN_MEMORY = 'memory://';

/** What the reference services read from the environment. They are demo services: defaults everywhere. */
export interface ServiceEnvironment {
  /** Where the other services are; read at call time, so a test may fill it in after binding ports. */
  readonly urls: UpstreamUrls;
  readonly basePort: number;
  readonly jwtSecret: string;
  readonly jwtIssuer?: string;
  readonly jwtAudience?: string;
  readonly accessTokenTtlSeconds: number;
  /** HS256 signs with `jwtSecret`; ES256 signs with a generated key pair published as a JWKS. */
  readonly tokenAlgorithm: 'HS256' | 'ES256';
  readonly playbackSigningKey: string;
  /** LOG_LEVEL of the service's pino log (default info). */
  readonly logLevel: LogLevel;
  /**
   * CHANGE_EVENTS_URL and CHANGE_EVENTS_SECRET: where a service announces its changes to the gateway,
   * signed; read at each change, so a launcher that learns the gateway's address later may set it.
   */
  changeEvents?: { readonly url: string; readonly secret: string };
  /** LIVETV_SLOT_SECONDS: every channel's programmes this long (demos, tests); unset, 30 to 120 minutes by channel. */
  readonly livetvSlotMs?: number;
  readonly database: DatabaseSettings;
}

function integerFrom(value: string | undefined, fallback: number, name: string): number {
  if (value === undefined || value === '') return fallback;
  const parsed = Number(value);
  if (!Number.isInteger(parsed) || parsed <= 0) throw new Error(`${name} must be a positive integer`);
  return parsed;
}

function tokenAlgorithmFrom(value: string | undefined): 'HS256' | 'ES256' {
  if (value === undefined || value === '' || value === 'HS256') return 'HS256';
  if (value === 'ES256') return 'ES256';
  throw new Error('AUTH_TOKEN_ALGORITHM must be HS256 or ES256');
}

function logLevelFrom(value: string | undefined): LogLevel {
  if (value === undefined || value === '') return 'info';
  const level = LOG_LEVELS.find((candidate) => candidate === value);
  if (level === undefined) throw new Error(`LOG_LEVEL must be one of ${LOG_LEVELS.join(', ')}`);
  return level;
}

function databaseFrom(env: NodeJS.ProcessEnv): DatabaseSettings {
  const url = env.DATABASE_URL;
  if (url) {
    let protocol: string;
    try {
      protocol = new URL(url).protocol;
    } catch {
      throw new Error('DATABASE_URL must be a postgres:// URL');
    }
    if (protocol !== 'postgres:' && protocol !== 'postgresql:') throw new Error('DATABASE_URL must be a postgres:// URL');
    return { kind: 'postgres', url, ...(env.DATABASE_PASSWORD ? { password: env.DATABASE_PASSWORD } : {}) };
  }
  if (env.DATA_DIR === IN_MEMORY) return { kind: 'memory' };
  // The default is the project's own (git-ignored), wherever the command runs from; a given path is the caller's.
  return { kind: 'embedded', dataDir: env.DATA_DIR ? resolve(env.DATA_DIR) : `${PROJECT_ROOT}.data` };
}

/** The services' secrets: each may be given as `NAME_FILE` (Docker and Kubernetes secrets). */
const SECRET_VARIABLES = ['JWT_SECRET_KEY', 'PLAYBACK_SIGNING_KEY', 'CHANGE_EVENTS_SECRET', 'DATABASE_URL', 'DATABASE_PASSWORD'];

/** Every variable a reference service reads (besides tracing's, as the gateway reads them). */
export const SERVICE_VARIABLES: ReadonlySet<string> = new Set([
  'HOST',
  'SERVICES_BASE_PORT',
  ...UPSTREAM_NAMES.map((name) => UPSTREAMS[name].envVar),
  ...SECRET_VARIABLES.flatMap((name) => [name, `${name}_FILE`]),
  'JWT_ISSUER',
  'JWT_AUDIENCE',
  'ACCESS_TOKEN_TTL_SECONDS',
  'AUTH_TOKEN_ALGORITHM',
  'LOG_LEVEL',
  'CHANGE_EVENTS_URL',
  'LIVETV_SLOT_SECONDS',
  'DATA_DIR',
]);

export function serviceEnvironment(given: NodeJS.ProcessEnv = process.env): ServiceEnvironment {
  const env = withSecretFiles(given, SECRET_VARIABLES);
  const basePort = integerFrom(env.SERVICES_BASE_PORT, DEFAULT_SERVICES_BASE_PORT, 'SERVICES_BASE_PORT');
  const urls = referenceServiceUrls(basePort);
  for (const name of UPSTREAM_NAMES) {
    const configured = env[UPSTREAMS[name].envVar];
    if (configured) urls[name] = configured.replace(/\/+$/, '');
  }
  return {
    urls,
    basePort,
    jwtSecret: env.JWT_SECRET_KEY || DEVELOPMENT_JWT_SECRET,
    ...(env.JWT_ISSUER ? { jwtIssuer: env.JWT_ISSUER } : {}),
    ...(env.JWT_AUDIENCE ? { jwtAudience: env.JWT_AUDIENCE } : {}),
    accessTokenTtlSeconds: integerFrom(env.ACCESS_TOKEN_TTL_SECONDS, 3600, 'ACCESS_TOKEN_TTL_SECONDS'),
    tokenAlgorithm: tokenAlgorithmFrom(env.AUTH_TOKEN_ALGORITHM),
    playbackSigningKey: env.PLAYBACK_SIGNING_KEY || 'development-only-playback-signing-key',
    logLevel: logLevelFrom(env.LOG_LEVEL),
    ...(env.CHANGE_EVENTS_URL && env.CHANGE_EVENTS_SECRET ? { changeEvents: { url: env.CHANGE_EVENTS_URL, secret: env.CHANGE_EVENTS_SECRET } } : {}),
    ...(env.LIVETV_SLOT_SECONDS ? { livetvSlotMs: integerFrom(env.LIVETV_SLOT_SECONDS, 1, 'LIVETV_SLOT_SECONDS') * 1000 } : {}),
    database: databaseFrom(env),
  };
}

import { z } from 'zod';
import { DEVELOPMENT_JWT_SECRET } from '../../shared/development.js';
import type { BodyPolicy } from './request-body.js';
import { SecretFileError, withSecretFiles } from '../../shared/secret-files.js';
import { loadTrustedDocuments, type TrustedDocuments, type TrustedDocumentsMode } from './trusted-documents.js';
import { DEFAULT_SERVICES_BASE_PORT, UPSTREAM_NAMES, UPSTREAMS, referenceServiceUrls, type UpstreamUrls } from '../../shared/upstreams.js';
import { absoluteUrl, ConfigError, flag, integer, LOG_LEVELS, oneOf, parsed, setting, text, type LogLevel, type Setting } from '../../shared/settings.js';
import { tracingOf, tracingShape, type TracingConfig } from '../../shared/tracing.js';

const HMAC_ALGORITHMS = ['HS256', 'HS384', 'HS512'] as const;
const ASYMMETRIC_ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA'] as const;
const SUPPORTED_ALGORITHMS: readonly string[] = [...HMAC_ALGORITHMS, ...ASYMMETRIC_ALGORITHMS];
export const NODE_ENVS = ['development', 'production', 'test'] as const;
const LOG_FORMATS = ['json', 'pretty'] as const;

export type NodeEnv = (typeof NODE_ENVS)[number];
export type LogFormat = (typeof LOG_FORMATS)[number];

export interface JwtConfig {
  /** HMAC key; present when any HS* algorithm is accepted. */
  readonly secret?: string;
  readonly algorithms: readonly string[];
  readonly jwksUrl?: string;
  readonly issuer?: string;
  readonly audience?: string;
  /** True when the secret is the development default (never in production). */
  readonly usesDevelopmentSecret: boolean;
}

/** What a GraphQL request may hold before any library walks it (GRAPHQL_BODY_LIMIT_BYTES and the two below). */
export interface GraphQLInputBounds {
  /** GRAPHQL_MAX_JSON_DEPTH: arrays and objects nested in the body (or a GET's `variables`, `extensions`). */
  readonly maxJsonDepth: number;
  /** GRAPHQL_MAX_VARIABLE_VALUES: values (scalars, list items, object fields) in `variables` and `extensions` together. */
  readonly maxValues: number;
}

export interface GatewayConfig {
  readonly nodeEnv: NodeEnv;
  readonly port: number;
  readonly host: string;
  readonly upstreams: UpstreamUrls;
  readonly jwt: JwtConfig;
  readonly upstreamTimeoutMs: number;
  /** Largest upstream body read whole (GraphQL); REST streams. */
  readonly upstreamResponseLimitBytes: number;
  /** Each upstream's circuit breaker: consecutive failures that open it (0: never), how long it stays open. */
  readonly breaker: { readonly failureThreshold: number; readonly openMs: number };
  /**
   * The shared HTTP cache of upstream answers (RFC 9111): UPSTREAM_CACHE_MAX_BYTES in memory (0: off),
   * UPSTREAM_CACHE_MAX_ENTRY_BYTES at most per answer; UPSTREAM_COALESCING: identical GETs in flight share one call.
   */
  readonly upstreamCache: { readonly maxBytes: number; readonly maxEntryBytes: number; readonly coalescing: boolean };
  /** Request bodies: BODY_LIMIT_BYTES and how long a client may take to send one. */
  readonly body: BodyPolicy;
  /** REQUEST_HEAD_TIMEOUT_MS: the longest a client may take to send a request's head. */
  readonly headTimeoutMs: number;
  /** UPLOADS_PER_CLIENT: streamed uploads one client address may have in flight at once. */
  readonly uploadsPerClient: number;
  /** CORS_ORIGINS (origins and patterns); in development, unset, the local ones: http://localhost:* and http://127.0.0.1:*. */
  readonly corsOrigins: readonly string[];
  /** CORS_ALLOWED_HEADERS: more request headers browsers may send (x-device-id, …). */
  readonly corsAllowedHeaders: readonly string[];
  readonly trustProxyHops: number;
  /** RATE_LIMIT_IPV6_PREFIX: IPv6 clients count, in every per-address bound, by this many leading bits. */
  readonly rateLimitIpv6Prefix: number;
  readonly rateLimitPerMinute: number;
  /**
   * REDIS_URL (credentials and rediss:// allowed) and REDIS_PASSWORD, each also as a `_FILE`: what the
   * replicas share (rate limits, caches, persisted queries, invalidations); REDIS_COMMAND_TIMEOUT_MS, the
   * longest a request waits for Redis before it goes on without.
   */
  readonly redis?: { readonly url: string; readonly password?: string; readonly commandTimeoutMs: number };
  readonly logLevel: LogLevel;
  /** LOG_FORMAT: readable lines in development, JSON elsewhere, unless set. */
  readonly logFormat: LogFormat;
  /** ACCESS_LOG: one `info` line per request. */
  readonly accessLog: boolean;
  readonly tracing: TracingConfig;
  /** ADMIN_PORT: a second listener for /metrics, /health and /ready details, off the public port. */
  readonly adminPort?: number;
  /** READY_REQUIRES_ALL_UPSTREAMS: /ready is 503 while any upstream is down (else it reports them, 200). */
  readonly readyRequiresAllUpstreams: boolean;
  /** After SIGTERM: not ready but serving for `drainMs`, then closing, in-flight requests get `graceMs`. */
  readonly shutdown: { readonly drainMs: number; readonly graceMs: number };
  readonly graphqlIntrospection: boolean;
  /** GRAPHQL_MAX_COST: the most a query may cost, lists counted by the items they stand for. */
  readonly graphqlMaxCost: number;
  /**
   * What a GraphQL request may hold before any library walks it: GRAPHQL_BODY_LIMIT_BYTES (well under
   * BODY_LIMIT_BYTES: a GraphQL body is a document and its variables, never an upload), JSON depth and
   * the number of values in its variables and extensions.
   */
  readonly graphqlInputs: GraphQLInputBounds & { readonly bodyLimitBytes: number };
  /**
   * GRAPHQL_RESPONSE_CACHE_MAX_BYTES: whole GraphQL responses kept in memory for their lifetime, half for
   * anonymous ones that may be shared (`Cache-Control: public`), half for those to a token
   * (`Cache-Control: private`, answered to that token only) (0: off; off too with the shared cache of
   * upstream answers, whose invalidation it follows).
   */
  readonly graphqlResponseCacheMaxBytes: number;
  /**
   * Automatic persisted queries (APQ): PERSISTED_QUERIES_MAX_BYTES of registered documents (0: off), each
   * kept PERSISTED_QUERIES_TTL_SECONDS; shared by the replicas with REDIS_URL.
   */
  readonly persistedQueries: { readonly maxBytes: number; readonly ttlSeconds: number };
  /** TRUSTED_DOCUMENTS (manifests, comma-separated) and TRUSTED_DOCUMENTS_MODE; undefined when no manifest is given. */
  readonly trustedDocuments?: TrustedDocuments;
  /** GRAPHQL_MAX_UPSTREAM_CALLS: the most upstream calls one GraphQL request may make. */
  readonly graphqlMaxUpstreamCalls: number;
  /** REGISTRATIONS_PER_HOUR: accounts one client address may create (both faces); 0: no limit. */
  readonly registrationsPerHour: number;
  /** CREDENTIAL_CALLS_PER_CLIENT: password checks (login, register) one client address may have in flight (both faces); 0: no bound. */
  readonly credentialCallsPerClient: number;
  /** SUBSCRIPTIONS_PER_CLIENT: open subscriptions per client address (per replica); SUBSCRIPTIONS_PER_CONNECTION: per WebSocket. */
  readonly subscriptions: { readonly perClient: number; readonly perConnection: number };
  /** CHANGE_EVENTS_SECRET: the key the live TV service signs its change events with; without it, none is taken. */
  readonly changeEventsSecret?: string;
}

/** Where `npm start`'s developers run their web apps: any port on this machine. */
const DEVELOPMENT_ORIGINS: readonly string[] = ['http://localhost:*', 'http://127.0.0.1:*'];

/** Settings that are secrets: never shown in an error, and each may be given as `NAME_FILE`. */
const SECRET_VARIABLES = new Set(['JWT_SECRET_KEY', 'REDIS_URL', 'REDIS_PASSWORD', 'CHANGE_EVENTS_SECRET']);

/** The variables other defaults follow, read first. */
const basisShape = {
  NODE_ENV: oneOf('NODE_ENV', NODE_ENVS, 'development'),
  SERVICES_BASE_PORT: integer('SERVICES_BASE_PORT', 1, 65530, DEFAULT_SERVICES_BASE_PORT),
  JWT_SECRET_KEY: setting(z.string().min(32, { error: 'JWT_SECRET_KEY must be at least 32 characters (256 bits)' })),
  JWKS_URL: absoluteUrl('JWKS_URL', ['https:', 'http:']),
};
const basisSchema = z.object(basisShape);
type Basis = z.infer<typeof basisSchema>;

/** The algorithms accepted unless JWT_ALGORITHM names them: those the key material verifies. */
function defaultAlgorithms({ JWKS_URL, JWT_SECRET_KEY }: Basis): string {
  if (JWKS_URL === undefined) return 'HS256';
  return JWT_SECRET_KEY === undefined ? 'RS256,ES256,EdDSA' : 'HS256,RS256,ES256,EdDSA';
}

/**
 * Every variable the gateway reads, each with its default: the one place defaults are written (the
 * documented table is checked against it). A few follow the basis: NODE_ENV decides the CORS origins,
 * the log format and introspection; SERVICES_BASE_PORT the upstream URLs; the keys the algorithms.
 */
function environmentSchema(basis: Basis) {
  const development = basis.NODE_ENV === 'development';
  const referenceServices = referenceServiceUrls(basis.SERVICES_BASE_PORT);
  return z.object({
    ...basisShape,
    PORT: integer('PORT', 1, 65535, 4000),
    HOST: text('127.0.0.1'),
    ...(Object.fromEntries(
      UPSTREAM_NAMES.map((name) => [UPSTREAMS[name].envVar, absoluteUrl(UPSTREAMS[name].envVar, ['http:', 'https:'], { fallback: referenceServices[name] })]),
    ) as Record<string, Setting<string>>),
    JWT_ALGORITHM: text(defaultAlgorithms(basis)),
    JWT_ISSUER: text(),
    JWT_AUDIENCE: text(),
    UPSTREAM_TIMEOUT_MS: integer('UPSTREAM_TIMEOUT_MS', 1, 600_000, 30_000),
    UPSTREAM_RESPONSE_LIMIT_BYTES: integer('UPSTREAM_RESPONSE_LIMIT_BYTES', 1, 1024 * 1024 * 1024, 10 * 1024 * 1024),
    UPSTREAM_BREAKER_FAILURES: integer('UPSTREAM_BREAKER_FAILURES', 0, 1000, 5),
    UPSTREAM_BREAKER_OPEN_MS: integer('UPSTREAM_BREAKER_OPEN_MS', 1, 3_600_000, 10_000),
    UPSTREAM_CACHE_MAX_BYTES: integer('UPSTREAM_CACHE_MAX_BYTES', 0, 16 * 1024 * 1024 * 1024, 64 * 1024 * 1024),
    UPSTREAM_CACHE_MAX_ENTRY_BYTES: integer('UPSTREAM_CACHE_MAX_ENTRY_BYTES', 1, 1024 * 1024 * 1024, 1024 * 1024),
    UPSTREAM_COALESCING: flag('UPSTREAM_COALESCING', true),
    BODY_LIMIT_BYTES: integer('BODY_LIMIT_BYTES', 1, 1024 * 1024 * 1024, 10 * 1024 * 1024),
    REQUEST_HEAD_TIMEOUT_MS: integer('REQUEST_HEAD_TIMEOUT_MS', 100, 600_000, 10_000),
    REQUEST_BODY_IDLE_TIMEOUT_MS: integer('REQUEST_BODY_IDLE_TIMEOUT_MS', 100, 600_000, 10_000),
    REQUEST_BODY_TIMEOUT_MS: integer('REQUEST_BODY_TIMEOUT_MS', 100, 3_600_000, 30_000),
    UPLOADS_PER_CLIENT: integer('UPLOADS_PER_CLIENT', 1, 10_000, 4),
    CORS_ORIGINS: development ? text(DEVELOPMENT_ORIGINS.join(',')) : text(),
    CORS_ALLOWED_HEADERS: text(),
    TRUST_PROXY_HOPS: integer('TRUST_PROXY_HOPS', 0, 16, 0),
    RATE_LIMIT_PER_MINUTE: integer('RATE_LIMIT_PER_MINUTE', 0, 10_000_000, 600),
    RATE_LIMIT_IPV6_PREFIX: integer('RATE_LIMIT_IPV6_PREFIX', 1, 128, 64),
    // rediss:// connects with TLS.
    REDIS_URL: absoluteUrl('REDIS_URL', ['redis:', 'rediss:'], { credentials: 'allowed' }),
    REDIS_PASSWORD: text(),
    REDIS_COMMAND_TIMEOUT_MS: integer('REDIS_COMMAND_TIMEOUT_MS', 10, 10_000, 250),
    LOG_LEVEL: oneOf('LOG_LEVEL', LOG_LEVELS, 'info'),
    LOG_FORMAT: oneOf('LOG_FORMAT', LOG_FORMATS, development ? 'pretty' : 'json'),
    ACCESS_LOG: flag('ACCESS_LOG', true),
    ...tracingShape,
    ADMIN_PORT: integer('ADMIN_PORT', 1, 65535),
    READY_REQUIRES_ALL_UPSTREAMS: flag('READY_REQUIRES_ALL_UPSTREAMS', false),
    SHUTDOWN_DRAIN_MS: integer('SHUTDOWN_DRAIN_MS', 0, 600_000, 5000),
    SHUTDOWN_GRACE_MS: integer('SHUTDOWN_GRACE_MS', 0, 600_000, 10_000),
    GRAPHQL_INTROSPECTION: flag('GRAPHQL_INTROSPECTION', basis.NODE_ENV !== 'production'),
    TRUSTED_DOCUMENTS: text(),
    TRUSTED_DOCUMENTS_MODE: oneOf('TRUSTED_DOCUMENTS_MODE', ['allow-arbitrary', 'require'], 'allow-arbitrary'),
    GRAPHQL_MAX_COST: integer('GRAPHQL_MAX_COST', 1, 10_000_000, 10_000),
    GRAPHQL_BODY_LIMIT_BYTES: integer('GRAPHQL_BODY_LIMIT_BYTES', 1024, 64 * 1024 * 1024, 1024 * 1024),
    GRAPHQL_MAX_JSON_DEPTH: integer('GRAPHQL_MAX_JSON_DEPTH', 2, 1000, 32),
    GRAPHQL_MAX_VARIABLE_VALUES: integer('GRAPHQL_MAX_VARIABLE_VALUES', 1, 1_000_000, 10_000),
    GRAPHQL_RESPONSE_CACHE_MAX_BYTES: integer('GRAPHQL_RESPONSE_CACHE_MAX_BYTES', 0, 16 * 1024 * 1024 * 1024, 16 * 1024 * 1024),
    PERSISTED_QUERIES_MAX_BYTES: integer('PERSISTED_QUERIES_MAX_BYTES', 0, 1024 * 1024 * 1024, 16 * 1024 * 1024),
    PERSISTED_QUERIES_TTL_SECONDS: integer('PERSISTED_QUERIES_TTL_SECONDS', 1, 30 * 24 * 3600, 24 * 3600),
    GRAPHQL_MAX_UPSTREAM_CALLS: integer('GRAPHQL_MAX_UPSTREAM_CALLS', 1, 10_000, 50),
    REGISTRATIONS_PER_HOUR: integer('REGISTRATIONS_PER_HOUR', 0, 1_000_000, 10),
    CREDENTIAL_CALLS_PER_CLIENT: integer('CREDENTIAL_CALLS_PER_CLIENT', 0, 10_000, 8),
    SUBSCRIPTIONS_PER_CLIENT: integer('SUBSCRIPTIONS_PER_CLIENT', 1, 1_000_000, 20),
    SUBSCRIPTIONS_PER_CONNECTION: integer('SUBSCRIPTIONS_PER_CONNECTION', 1, 1000, 10),
    CHANGE_EVENTS_SECRET: setting(z.string().min(32, { error: 'CHANGE_EVENTS_SECRET must be at least 32 characters' })),
  });
}

/** The environment as the schema reads it: every variable's value, or its default. */
export type Environment = z.infer<ReturnType<typeof environmentSchema>>;

/** Reads `env` through the schema (secrets from their `NAME_FILE`s); throws a ConfigError naming the first bad variable. */
export function readEnvironment(env: NodeJS.ProcessEnv): Environment {
  try {
    const given = withSecretFiles(env, SECRET_VARIABLES);
    return parsed(environmentSchema(parsed(basisSchema, given, SECRET_VARIABLES)), given, SECRET_VARIABLES);
  } catch (error) {
    if (error instanceof SecretFileError) throw new ConfigError(error.message, { cause: error });
    throw error;
  }
}

function parseAlgorithms(raw: string): string[] {
  const algorithms = [...new Set(raw.split(',').map((item) => item.trim()).filter((item) => item !== ''))];
  if (algorithms.length === 0) throw new ConfigError('JWT_ALGORITHM must name at least one algorithm');
  for (const algorithm of algorithms) {
    if (algorithm.toLowerCase() === 'none') throw new ConfigError('JWT_ALGORITHM: "none" is never accepted');
    if (!SUPPORTED_ALGORITHMS.includes(algorithm)) {
      throw new ConfigError(`JWT_ALGORITHM: unsupported algorithm "${algorithm}" (supported: ${SUPPORTED_ALGORITHMS.join(', ')})`);
    }
  }
  return algorithms;
}

/**
 * CORS_ORIGINS: exact origins, or patterns with `*` as the whole first label of the host (one level:
 * `https://*.tv.example` allows `https://app.tv.example`, not `https://tv.example` nor
 * `https://a.b.tv.example`) or as the whole port (`http://localhost:*`).
 */
function parseOrigins(raw: string | undefined): string[] {
  if (raw === undefined) return [];
  return raw
    .split(',')
    .map((item) => item.trim())
    .filter((item) => item !== '')
    .map((origin) => {
      const concrete = origin.replace(/^(https?:\/\/)\*\./, '$1wildcard.').replace(/:\*$/, ':1');
      let parsed: URL | undefined;
      try {
        parsed = new URL(concrete);
      } catch {
        parsed = undefined;
      }
      if (!parsed || parsed.origin === 'null' || parsed.origin !== concrete || concrete.includes('*')) {
        throw new ConfigError(`CORS_ORIGINS: "${origin}" is not an origin or an origin pattern (scheme://host[:port]; * only as the first label, https://*.tv.example, or as the port, http://localhost:*)`);
      }
      return origin;
    });
}

/** CORS_ALLOWED_HEADERS: request header names browsers may send besides the gateway's own. */
function parseHeaderNames(raw: string | undefined): string[] {
  if (raw === undefined) return [];
  return raw
    .split(',')
    .map((item) => item.trim())
    .filter((item) => item !== '')
    .map((name) => {
      if (!/^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/.test(name)) throw new ConfigError(`CORS_ALLOWED_HEADERS: "${name}" is not a header name`);
      return name;
    });
}

/**
 * Every variable the gateway reads: its own, each secret's `_FILE`, and the OpenTelemetry SDK's
 * resource variables (read by the SDK itself). Deployment files are checked against it.
 */
export const CONFIG_VARIABLES: ReadonlySet<string> = new Set([
  ...Object.keys(environmentSchema(basisSchema.parse({})).shape),
  ...[...SECRET_VARIABLES].map((name) => `${name}_FILE`),
  'OTEL_SERVICE_NAME',
  'OTEL_RESOURCE_ATTRIBUTES',
]);

function trustedDocumentsOf(files: string | undefined, mode: TrustedDocumentsMode): { trustedDocuments?: TrustedDocuments } {
  const paths = (files ?? '').split(',').map((file) => file.trim()).filter((file) => file !== '');
  if (paths.length === 0) {
    if (mode === 'require') throw new ConfigError('TRUSTED_DOCUMENTS_MODE=require needs TRUSTED_DOCUMENTS: the manifests of the documents to run');
    return {};
  }
  try {
    return { trustedDocuments: loadTrustedDocuments(paths, mode) };
  } catch (error) {
    throw new ConfigError((error as Error).message, { cause: error });
  }
}

/** Reads and checks the gateway's configuration; throws a ConfigError naming the first bad variable. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): GatewayConfig {
  const vars = readEnvironment(env);
  const nodeEnv = vars.NODE_ENV;
  const production = nodeEnv === 'production';
  const jwksUrl = vars.JWKS_URL;

  if (production && !vars.JWT_SECRET_KEY && !jwksUrl) {
    throw new ConfigError('NODE_ENV=production needs JWT_SECRET_KEY or JWKS_URL: there is no default key in production');
  }
  const algorithms = parseAlgorithms(vars.JWT_ALGORITHM);
  const usesHmac = algorithms.some((algorithm) => algorithm.startsWith('HS'));
  const asymmetric = algorithms.find((algorithm) => !algorithm.startsWith('HS'));
  if (asymmetric && !jwksUrl) throw new ConfigError(`JWT_ALGORITHM lists ${asymmetric}, which needs JWKS_URL`);
  if (usesHmac && production && !vars.JWT_SECRET_KEY) {
    throw new ConfigError('JWT_ALGORITHM lists an HS* algorithm, which needs JWT_SECRET_KEY in production');
  }
  // Outside production an HMAC algorithm without a key verifies with the development key (a rule, not a
  // default: with JWKS_URL alone no HMAC algorithm is accepted, so no development key either).
  const secret = usesHmac ? (vars.JWT_SECRET_KEY ?? DEVELOPMENT_JWT_SECRET) : undefined;

  if (vars.ADMIN_PORT !== undefined && vars.ADMIN_PORT === vars.PORT) throw new ConfigError('ADMIN_PORT must be another port than PORT');
  const upstreams = Object.fromEntries(UPSTREAM_NAMES.map((name) => [name, (vars as Record<string, unknown>)[UPSTREAMS[name].envVar]])) as UpstreamUrls;

  return {
    nodeEnv,
    port: vars.PORT,
    host: vars.HOST,
    upstreams,
    jwt: {
      algorithms,
      usesDevelopmentSecret: usesHmac && vars.JWT_SECRET_KEY === undefined,
      ...(secret !== undefined ? { secret } : {}),
      ...(jwksUrl !== undefined ? { jwksUrl } : {}),
      ...(vars.JWT_ISSUER !== undefined ? { issuer: vars.JWT_ISSUER } : {}),
      ...(vars.JWT_AUDIENCE !== undefined ? { audience: vars.JWT_AUDIENCE } : {}),
    },
    upstreamTimeoutMs: vars.UPSTREAM_TIMEOUT_MS,
    upstreamResponseLimitBytes: vars.UPSTREAM_RESPONSE_LIMIT_BYTES,
    breaker: { failureThreshold: vars.UPSTREAM_BREAKER_FAILURES, openMs: vars.UPSTREAM_BREAKER_OPEN_MS },
    upstreamCache: {
      maxBytes: vars.UPSTREAM_CACHE_MAX_BYTES,
      maxEntryBytes: vars.UPSTREAM_CACHE_MAX_ENTRY_BYTES,
      coalescing: vars.UPSTREAM_COALESCING,
    },
    body: {
      limitBytes: vars.BODY_LIMIT_BYTES,
      idleTimeoutMs: vars.REQUEST_BODY_IDLE_TIMEOUT_MS,
      totalTimeoutMs: vars.REQUEST_BODY_TIMEOUT_MS,
    },
    headTimeoutMs: vars.REQUEST_HEAD_TIMEOUT_MS,
    uploadsPerClient: vars.UPLOADS_PER_CLIENT,
    corsOrigins: parseOrigins(vars.CORS_ORIGINS),
    corsAllowedHeaders: parseHeaderNames(vars.CORS_ALLOWED_HEADERS),
    trustProxyHops: vars.TRUST_PROXY_HOPS,
    rateLimitIpv6Prefix: vars.RATE_LIMIT_IPV6_PREFIX,
    rateLimitPerMinute: vars.RATE_LIMIT_PER_MINUTE,
    ...(vars.REDIS_URL !== undefined ? { redis: { url: vars.REDIS_URL, commandTimeoutMs: vars.REDIS_COMMAND_TIMEOUT_MS, ...(vars.REDIS_PASSWORD !== undefined ? { password: vars.REDIS_PASSWORD } : {}) } } : {}),
    logLevel: vars.LOG_LEVEL,
    logFormat: vars.LOG_FORMAT,
    accessLog: vars.ACCESS_LOG,
    tracing: tracingOf(vars),
    ...(vars.ADMIN_PORT !== undefined ? { adminPort: vars.ADMIN_PORT } : {}),
    readyRequiresAllUpstreams: vars.READY_REQUIRES_ALL_UPSTREAMS,
    shutdown: { drainMs: vars.SHUTDOWN_DRAIN_MS, graceMs: vars.SHUTDOWN_GRACE_MS },
    graphqlIntrospection: vars.GRAPHQL_INTROSPECTION,
    graphqlMaxCost: vars.GRAPHQL_MAX_COST,
    graphqlInputs: {
      bodyLimitBytes: vars.GRAPHQL_BODY_LIMIT_BYTES,
      maxJsonDepth: vars.GRAPHQL_MAX_JSON_DEPTH,
      maxValues: vars.GRAPHQL_MAX_VARIABLE_VALUES,
    },
    graphqlResponseCacheMaxBytes: vars.GRAPHQL_RESPONSE_CACHE_MAX_BYTES,
    persistedQueries: { maxBytes: vars.PERSISTED_QUERIES_MAX_BYTES, ttlSeconds: vars.PERSISTED_QUERIES_TTL_SECONDS },
    ...trustedDocumentsOf(vars.TRUSTED_DOCUMENTS, vars.TRUSTED_DOCUMENTS_MODE),
    graphqlMaxUpstreamCalls: vars.GRAPHQL_MAX_UPSTREAM_CALLS,
    registrationsPerHour: vars.REGISTRATIONS_PER_HOUR,
    credentialCallsPerClient: vars.CREDENTIAL_CALLS_PER_CLIENT,
    subscriptions: { perClient: vars.SUBSCRIPTIONS_PER_CLIENT, perConnection: vars.SUBSCRIPTIONS_PER_CONNECTION },
    ...(vars.CHANGE_EVENTS_SECRET !== undefined ? { changeEventsSecret: vars.CHANGE_EVENTS_SECRET } : {}),
  };
}

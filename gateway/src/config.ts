import { z } from 'zod';
import { DEVELOPMENT_JWT_SECRET } from '../../shared/development.js';
import type { BodyPolicy } from './request-body.js';
import { SecretFileError, withSecretFiles } from '../../shared/secret-files.js';
import { loadTrustedDocuments, type TrustedDocuments, type TrustedDocumentsMode } from './trusted-documents.js';
import { DEFAULT_SERVICES_BASE_PORT, UPSTREAM_NAMES, UPSTREAMS, referenceServiceUrls, type UpstreamUrls } from '../../shared/upstreams.js';
import { absoluteUrl, ConfigError, integer, LOG_LEVELS, oneOf, parsed, unsetWhenEmpty, type LogLevel } from '../../shared/settings.js';
import { tracingOf, tracingShape, type TracingConfig } from '../../shared/tracing.js';

const HMAC_ALGORITHMS = ['HS256', 'HS384', 'HS512'] as const;
const ASYMMETRIC_ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA'] as const;
const SUPPORTED_ALGORITHMS: readonly string[] = [...HMAC_ALGORITHMS, ...ASYMMETRIC_ALGORITHMS];
const NODE_ENVS = ['development', 'production', 'test'] as const;
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
  /** REDIS_URL (credentials and rediss:// allowed) and REDIS_PASSWORD, each also as a `_FILE`. */
  readonly redis?: { readonly url: string; readonly password?: string };
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
   * GRAPHQL_RESPONSE_CACHE_MAX_BYTES: whole anonymous GraphQL responses that may be shared
   * (`Cache-Control: public`) kept in memory for their lifetime (0: off; off too with the shared cache of
   * upstream answers, whose invalidation it follows).
   */
  readonly graphqlResponseCacheMaxBytes: number;
  /** TRUSTED_DOCUMENTS (manifests, comma-separated) and TRUSTED_DOCUMENTS_MODE; undefined when no manifest is given. */
  readonly trustedDocuments?: TrustedDocuments;
  /** GRAPHQL_MAX_UPSTREAM_CALLS: the most upstream calls one GraphQL request may make. */
  readonly graphqlMaxUpstreamCalls: number;
  /** REGISTRATIONS_PER_HOUR: accounts one client address may create (both faces); 0: no limit. */
  readonly registrationsPerHour: number;
  /** CREDENTIAL_CALLS_PER_CLIENT: password checks (login, register) one client address may have in flight (both faces); 0: no bound. */
  readonly credentialCallsPerClient: number;
}

/** Where `npm start`'s developers run their web apps: any port on this machine. */
const DEVELOPMENT_ORIGINS: readonly string[] = ['http://localhost:*', 'http://127.0.0.1:*'];

/** Settings that are secrets: never shown in an error, and each may be given as `NAME_FILE`. */
const SECRET_VARIABLES = new Set(['JWT_SECRET_KEY', 'REDIS_URL', 'REDIS_PASSWORD']);

const optionalText = z.preprocess(unsetWhenEmpty, z.string().optional());

const upstreamShape = Object.fromEntries(
  UPSTREAM_NAMES.map((name) => [UPSTREAMS[name].envVar, absoluteUrl(UPSTREAMS[name].envVar, ['http:', 'https:'])]),
) as Record<string, ReturnType<typeof absoluteUrl>>;

const environmentSchema = z.object({
  NODE_ENV: oneOf('NODE_ENV', NODE_ENVS),
  PORT: integer('PORT', 1, 65535),
  HOST: optionalText,
  SERVICES_BASE_PORT: integer('SERVICES_BASE_PORT', 1, 65530),
  ...upstreamShape,
  JWT_SECRET_KEY: z.preprocess(unsetWhenEmpty, z.string().min(32, { error: 'JWT_SECRET_KEY must be at least 32 characters (256 bits)' }).optional()),
  JWT_ALGORITHM: optionalText,
  JWKS_URL: absoluteUrl('JWKS_URL', ['https:', 'http:']),
  JWT_ISSUER: optionalText,
  JWT_AUDIENCE: optionalText,
  UPSTREAM_TIMEOUT_MS: integer('UPSTREAM_TIMEOUT_MS', 1, 600_000),
  UPSTREAM_RESPONSE_LIMIT_BYTES: integer('UPSTREAM_RESPONSE_LIMIT_BYTES', 1, 1024 * 1024 * 1024),
  UPSTREAM_BREAKER_FAILURES: integer('UPSTREAM_BREAKER_FAILURES', 0, 1000),
  UPSTREAM_BREAKER_OPEN_MS: integer('UPSTREAM_BREAKER_OPEN_MS', 1, 3_600_000),
  UPSTREAM_CACHE_MAX_BYTES: integer('UPSTREAM_CACHE_MAX_BYTES', 0, 16 * 1024 * 1024 * 1024),
  UPSTREAM_CACHE_MAX_ENTRY_BYTES: integer('UPSTREAM_CACHE_MAX_ENTRY_BYTES', 1, 1024 * 1024 * 1024),
  UPSTREAM_COALESCING: oneOf('UPSTREAM_COALESCING', ['true', 'false']),
  BODY_LIMIT_BYTES: integer('BODY_LIMIT_BYTES', 1, 1024 * 1024 * 1024),
  REQUEST_HEAD_TIMEOUT_MS: integer('REQUEST_HEAD_TIMEOUT_MS', 100, 600_000),
  REQUEST_BODY_IDLE_TIMEOUT_MS: integer('REQUEST_BODY_IDLE_TIMEOUT_MS', 100, 600_000),
  REQUEST_BODY_TIMEOUT_MS: integer('REQUEST_BODY_TIMEOUT_MS', 100, 3_600_000),
  UPLOADS_PER_CLIENT: integer('UPLOADS_PER_CLIENT', 1, 10_000),
  CORS_ORIGINS: optionalText,
  CORS_ALLOWED_HEADERS: optionalText,
  TRUST_PROXY_HOPS: integer('TRUST_PROXY_HOPS', 0, 16),
  RATE_LIMIT_PER_MINUTE: integer('RATE_LIMIT_PER_MINUTE', 0, 10_000_000),
  RATE_LIMIT_IPV6_PREFIX: integer('RATE_LIMIT_IPV6_PREFIX', 1, 128),
  // rediss:// connects with TLS.
  REDIS_URL: absoluteUrl('REDIS_URL', ['redis:', 'rediss:'], 'allowed'),
  REDIS_PASSWORD: optionalText,
  LOG_LEVEL: oneOf('LOG_LEVEL', LOG_LEVELS),
  LOG_FORMAT: oneOf('LOG_FORMAT', LOG_FORMATS),
  ACCESS_LOG: oneOf('ACCESS_LOG', ['true', 'false']),
  ...tracingShape,
  ADMIN_PORT: integer('ADMIN_PORT', 1, 65535),
  READY_REQUIRES_ALL_UPSTREAMS: oneOf('READY_REQUIRES_ALL_UPSTREAMS', ['true', 'false']),
  SHUTDOWN_DRAIN_MS: integer('SHUTDOWN_DRAIN_MS', 0, 600_000),
  SHUTDOWN_GRACE_MS: integer('SHUTDOWN_GRACE_MS', 0, 600_000),
  GRAPHQL_INTROSPECTION: oneOf('GRAPHQL_INTROSPECTION', ['true', 'false']),
  TRUSTED_DOCUMENTS: optionalText,
  TRUSTED_DOCUMENTS_MODE: oneOf('TRUSTED_DOCUMENTS_MODE', ['allow-arbitrary', 'require']),
  GRAPHQL_MAX_COST: integer('GRAPHQL_MAX_COST', 1, 10_000_000),
  GRAPHQL_BODY_LIMIT_BYTES: integer('GRAPHQL_BODY_LIMIT_BYTES', 1024, 64 * 1024 * 1024),
  GRAPHQL_MAX_JSON_DEPTH: integer('GRAPHQL_MAX_JSON_DEPTH', 2, 1000),
  GRAPHQL_MAX_VARIABLE_VALUES: integer('GRAPHQL_MAX_VARIABLE_VALUES', 1, 1_000_000),
  GRAPHQL_RESPONSE_CACHE_MAX_BYTES: integer('GRAPHQL_RESPONSE_CACHE_MAX_BYTES', 0, 16 * 1024 * 1024 * 1024),
  GRAPHQL_MAX_UPSTREAM_CALLS: integer('GRAPHQL_MAX_UPSTREAM_CALLS', 1, 10_000),
  REGISTRATIONS_PER_HOUR: integer('REGISTRATIONS_PER_HOUR', 0, 1_000_000),
  CREDENTIAL_CALLS_PER_CLIENT: integer('CREDENTIAL_CALLS_PER_CLIENT', 0, 10_000),
});

function parseAlgorithms(raw: string | undefined, jwksUrl: string | undefined, explicitSecret: boolean): string[] {
  if (raw === undefined) {
    if (!jwksUrl) return ['HS256'];
    return explicitSecret ? ['HS256', 'RS256', 'ES256', 'EdDSA'] : ['RS256', 'ES256', 'EdDSA'];
  }
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
  ...Object.keys(environmentSchema.shape),
  ...[...SECRET_VARIABLES].map((name) => `${name}_FILE`),
  'OTEL_SERVICE_NAME',
  'OTEL_RESOURCE_ATTRIBUTES',
]);

function trustedDocumentsOf(files: string | undefined, mode: TrustedDocumentsMode | undefined): { trustedDocuments?: TrustedDocuments } {
  const paths = (files ?? '').split(',').map((file) => file.trim()).filter((file) => file !== '');
  if (paths.length === 0) {
    if (mode === 'require') throw new ConfigError('TRUSTED_DOCUMENTS_MODE=require needs TRUSTED_DOCUMENTS: the manifests of the documents to run');
    return {};
  }
  try {
    return { trustedDocuments: loadTrustedDocuments(paths, mode ?? 'allow-arbitrary') };
  } catch (error) {
    throw new ConfigError((error as Error).message, { cause: error });
  }
}

/** Reads and checks the gateway's configuration; throws a ConfigError naming the first bad variable. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): GatewayConfig {
  let vars: z.infer<typeof environmentSchema>;
  try {
    vars = parsed(environmentSchema, withSecretFiles(env, SECRET_VARIABLES), SECRET_VARIABLES);
  } catch (error) {
    if (error instanceof SecretFileError) throw new ConfigError(error.message, { cause: error });
    throw error;
  }
  const nodeEnv = vars.NODE_ENV ?? 'development';
  const production = nodeEnv === 'production';
  const jwksUrl = vars.JWKS_URL;

  if (production && !vars.JWT_SECRET_KEY && !jwksUrl) {
    throw new ConfigError('NODE_ENV=production needs JWT_SECRET_KEY or JWKS_URL: there is no default key in production');
  }
  const algorithms = parseAlgorithms(vars.JWT_ALGORITHM, jwksUrl, vars.JWT_SECRET_KEY !== undefined);
  const usesHmac = algorithms.some((algorithm) => algorithm.startsWith('HS'));
  const asymmetric = algorithms.find((algorithm) => !algorithm.startsWith('HS'));
  if (asymmetric && !jwksUrl) throw new ConfigError(`JWT_ALGORITHM lists ${asymmetric}, which needs JWKS_URL`);
  if (usesHmac && production && !vars.JWT_SECRET_KEY) {
    throw new ConfigError('JWT_ALGORITHM lists an HS* algorithm, which needs JWT_SECRET_KEY in production');
  }
  const secret = usesHmac ? (vars.JWT_SECRET_KEY ?? DEVELOPMENT_JWT_SECRET) : undefined;

  if (vars.ADMIN_PORT !== undefined && vars.ADMIN_PORT === (vars.PORT ?? 4000)) throw new ConfigError('ADMIN_PORT must be another port than PORT');
  const upstreams = referenceServiceUrls(vars.SERVICES_BASE_PORT ?? DEFAULT_SERVICES_BASE_PORT);
  for (const name of UPSTREAM_NAMES) {
    const configured = (vars as Record<string, unknown>)[UPSTREAMS[name].envVar] as string | undefined;
    if (configured) upstreams[name] = configured;
  }

  return {
    nodeEnv,
    port: vars.PORT ?? 4000,
    host: vars.HOST ?? '127.0.0.1',
    upstreams,
    jwt: {
      algorithms,
      usesDevelopmentSecret: usesHmac && vars.JWT_SECRET_KEY === undefined,
      ...(secret !== undefined ? { secret } : {}),
      ...(jwksUrl !== undefined ? { jwksUrl } : {}),
      ...(vars.JWT_ISSUER !== undefined ? { issuer: vars.JWT_ISSUER } : {}),
      ...(vars.JWT_AUDIENCE !== undefined ? { audience: vars.JWT_AUDIENCE } : {}),
    },
    upstreamTimeoutMs: vars.UPSTREAM_TIMEOUT_MS ?? 30_000,
    upstreamResponseLimitBytes: vars.UPSTREAM_RESPONSE_LIMIT_BYTES ?? 10 * 1024 * 1024,
    breaker: { failureThreshold: vars.UPSTREAM_BREAKER_FAILURES ?? 5, openMs: vars.UPSTREAM_BREAKER_OPEN_MS ?? 10_000 },
    upstreamCache: {
      maxBytes: vars.UPSTREAM_CACHE_MAX_BYTES ?? 64 * 1024 * 1024,
      maxEntryBytes: vars.UPSTREAM_CACHE_MAX_ENTRY_BYTES ?? 1024 * 1024,
      coalescing: vars.UPSTREAM_COALESCING !== 'false',
    },
    body: {
      limitBytes: vars.BODY_LIMIT_BYTES ?? 10 * 1024 * 1024,
      idleTimeoutMs: vars.REQUEST_BODY_IDLE_TIMEOUT_MS ?? 10_000,
      totalTimeoutMs: vars.REQUEST_BODY_TIMEOUT_MS ?? 30_000,
    },
    headTimeoutMs: vars.REQUEST_HEAD_TIMEOUT_MS ?? 10_000,
    uploadsPerClient: vars.UPLOADS_PER_CLIENT ?? 4,
    corsOrigins: vars.CORS_ORIGINS === undefined && nodeEnv === 'development' ? DEVELOPMENT_ORIGINS : parseOrigins(vars.CORS_ORIGINS),
    corsAllowedHeaders: parseHeaderNames(vars.CORS_ALLOWED_HEADERS),
    trustProxyHops: vars.TRUST_PROXY_HOPS ?? 0,
    rateLimitIpv6Prefix: vars.RATE_LIMIT_IPV6_PREFIX ?? 64,
    rateLimitPerMinute: vars.RATE_LIMIT_PER_MINUTE ?? 600,
    ...(vars.REDIS_URL !== undefined ? { redis: { url: vars.REDIS_URL, ...(vars.REDIS_PASSWORD !== undefined ? { password: vars.REDIS_PASSWORD } : {}) } } : {}),
    logLevel: vars.LOG_LEVEL ?? 'info',
    logFormat: vars.LOG_FORMAT ?? (nodeEnv === 'development' ? 'pretty' : 'json'),
    accessLog: vars.ACCESS_LOG !== 'false',
    tracing: tracingOf(vars),
    ...(vars.ADMIN_PORT !== undefined ? { adminPort: vars.ADMIN_PORT } : {}),
    readyRequiresAllUpstreams: vars.READY_REQUIRES_ALL_UPSTREAMS === 'true',
    shutdown: { drainMs: vars.SHUTDOWN_DRAIN_MS ?? 5000, graceMs: vars.SHUTDOWN_GRACE_MS ?? 10_000 },
    graphqlIntrospection: vars.GRAPHQL_INTROSPECTION === undefined ? !production : vars.GRAPHQL_INTROSPECTION === 'true',
    graphqlMaxCost: vars.GRAPHQL_MAX_COST ?? 10_000,
    graphqlInputs: {
      bodyLimitBytes: vars.GRAPHQL_BODY_LIMIT_BYTES ?? 1024 * 1024,
      maxJsonDepth: vars.GRAPHQL_MAX_JSON_DEPTH ?? 32,
      maxValues: vars.GRAPHQL_MAX_VARIABLE_VALUES ?? 10_000,
    },
    graphqlResponseCacheMaxBytes: vars.GRAPHQL_RESPONSE_CACHE_MAX_BYTES ?? 16 * 1024 * 1024,
    ...trustedDocumentsOf(vars.TRUSTED_DOCUMENTS, vars.TRUSTED_DOCUMENTS_MODE),
    graphqlMaxUpstreamCalls: vars.GRAPHQL_MAX_UPSTREAM_CALLS ?? 50,
    registrationsPerHour: vars.REGISTRATIONS_PER_HOUR ?? 10,
    credentialCallsPerClient: vars.CREDENTIAL_CALLS_PER_CLIENT ?? 2,
  };
}

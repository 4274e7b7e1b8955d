import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig, type GatewayConfig } from '../../gateway/src/config.js';
import { ConfigError } from '../../shared/settings.js';
import { DEVELOPMENT_JWT_SECRET } from '../../shared/development.js';

const SECRET = 'a-test-secret-that-is-long-enough-0123456789';

function errorOf(env: NodeJS.ProcessEnv): string {
  try {
    loadConfig(env);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as Error).message;
  }
  throw new Error('expected a ConfigError');
}

describe('configuration', () => {
  /**
   * Every variable of the contract: the value a test sets, where the configuration keeps it, what it
   * is when unset (the contract's default) and when set.
   */
  const SETTINGS: readonly (readonly [variable: string, value: string, read: (config: GatewayConfig) => unknown, unset: unknown, set: unknown])[] = [
    ['NODE_ENV', 'production', (config) => config.nodeEnv, 'development', 'production'],
    ['PORT', '8080', (config) => config.port, 4000, 8080],
    ['HOST', '0.0.0.0', (config) => config.host, '127.0.0.1', '0.0.0.0'],
    ['USER_MANAGEMENT_SERVICE_URL', 'http://users:8000/', (config) => config.upstreams.users, 'http://127.0.0.1:4102', 'http://users:8000'],
    ['AUTHENTICATION_SERVICE_URL', 'http://auth:8000', (config) => config.upstreams.auth, 'http://127.0.0.1:4101', 'http://auth:8000'],
    ['ONDEMAND_SERVICE_URL', 'https://ondemand.internal', (config) => config.upstreams.ondemand, 'http://127.0.0.1:4103', 'https://ondemand.internal'],
    ['LIVE_TV_SERVICE_URL', 'http://livetv:8000', (config) => config.upstreams.livetv, 'http://127.0.0.1:4104', 'http://livetv:8000'],
    ['RIGHTS_MANAGEMENT_SERVICE_URL', 'http://rights:8000', (config) => config.upstreams.rights, 'http://127.0.0.1:4105', 'http://rights:8000'],
    ['GLOBAL_SEARCH_SERVICE_URL', 'http://search:8000/api', (config) => config.upstreams.search, 'http://127.0.0.1:4106', 'http://search:8000/api'],
    ['JWT_SECRET_KEY', SECRET, (config) => [config.jwt.secret, config.jwt.usesDevelopmentSecret], [DEVELOPMENT_JWT_SECRET, true], [SECRET, false]],
    ['JWT_ALGORITHM', 'HS256, ES256', (config) => config.jwt.algorithms, ['HS256'], ['HS256', 'ES256']],
    ['JWKS_URL', 'https://idp.example/.well-known/jwks.json', (config) => config.jwt.jwksUrl, undefined, 'https://idp.example/.well-known/jwks.json'],
    ['JWT_ISSUER', 'https://idp.example', (config) => config.jwt.issuer, undefined, 'https://idp.example'],
    ['JWT_AUDIENCE', 'tv-api', (config) => config.jwt.audience, undefined, 'tv-api'],
    ['UPSTREAM_TIMEOUT_MS', '1500', (config) => config.upstreamTimeoutMs, 30_000, 1500],
    ['UPSTREAM_RESPONSE_LIMIT_BYTES', '2048', (config) => config.upstreamResponseLimitBytes, 10_485_760, 2048],
    ['UPSTREAM_BREAKER_FAILURES', '3', (config) => config.breaker.failureThreshold, 5, 3],
    ['UPSTREAM_BREAKER_OPEN_MS', '500', (config) => config.breaker.openMs, 10_000, 500],
    ['BODY_LIMIT_BYTES', '1024', (config) => config.body.limitBytes, 10_485_760, 1024],
    ['REQUEST_HEAD_TIMEOUT_MS', '2000', (config) => config.headTimeoutMs, 10_000, 2000],
    ['REQUEST_BODY_IDLE_TIMEOUT_MS', '3000', (config) => config.body.idleTimeoutMs, 10_000, 3000],
    ['REQUEST_BODY_TIMEOUT_MS', '4000', (config) => config.body.totalTimeoutMs, 30_000, 4000],
    ['UPLOADS_PER_CLIENT', '2', (config) => config.uploadsPerClient, 4, 2],
    // In development only: the web apps a developer runs locally (production: none).
    ['CORS_ORIGINS', 'https://tv.example, http://localhost:3000', (config) => config.corsOrigins, ['http://localhost:*', 'http://127.0.0.1:*'], ['https://tv.example', 'http://localhost:3000']],
    ['CORS_ALLOWED_HEADERS', 'X-Device-ID', (config) => config.corsAllowedHeaders, [], ['X-Device-ID']],
    ['TRUST_PROXY_HOPS', '1', (config) => config.trustProxyHops, 0, 1],
    ['RATE_LIMIT_PER_MINUTE', '0', (config) => config.rateLimitPerMinute, 600, 0],
    ['RATE_LIMIT_IPV6_PREFIX', '56', (config) => config.rateLimitIpv6Prefix, 64, 56],
    ['CREDENTIAL_CALLS_PER_CLIENT', '4', (config) => config.credentialCallsPerClient, 8, 4],
    ['REDIS_URL', 'redis://redis:6379', (config) => config.redis?.url, undefined, 'redis://redis:6379'],
    ['LOG_LEVEL', 'debug', (config) => config.logLevel, 'info', 'debug'],
    ['GRAPHQL_INTROSPECTION', 'true', (config) => config.graphqlIntrospection, true, true],
    ['GRAPHQL_BODY_LIMIT_BYTES', '65536', (config) => config.graphqlInputs.bodyLimitBytes, 1_048_576, 65_536],
    ['GRAPHQL_MAX_JSON_DEPTH', '8', (config) => config.graphqlInputs.maxJsonDepth, 32, 8],
    ['GRAPHQL_MAX_VARIABLE_VALUES', '500', (config) => config.graphqlInputs.maxValues, 10_000, 500],
  ];
  const readAll = (config: GatewayConfig) => SETTINGS.map(([variable, , read]) => [variable, read(config)]);

  it('has the contract defaults', () => {
    expect(readAll(loadConfig({}))).toEqual(SETTINGS.map(([variable, , , unset]) => [variable, unset]));
  });

  it('reads every variable of the contract', () => {
    const config = loadConfig(Object.fromEntries(SETTINGS.map(([variable, value]) => [variable, value])));
    expect(readAll(config)).toEqual(SETTINGS.map(([variable, , , , set]) => [variable, set]));
  });

  it('allows no CORS origin by default in production', () => {
    expect(loadConfig({ NODE_ENV: 'production', JWT_SECRET_KEY: SECRET }).corsOrigins).toEqual([]);
  });

  it('moves the default upstream block with SERVICES_BASE_PORT', () => {
    expect(loadConfig({ SERVICES_BASE_PORT: '5001' }).upstreams.search).toBe('http://127.0.0.1:5006');
  });

  it('turns introspection off in production unless asked for', () => {
    expect(loadConfig({ NODE_ENV: 'production', JWT_SECRET_KEY: SECRET }).graphqlIntrospection).toBe(false);
    expect(loadConfig({ GRAPHQL_INTROSPECTION: 'false' }).graphqlIntrospection).toBe(false);
  });

  it('defaults to asymmetric algorithms with a JWKS URL', () => {
    const config = loadConfig({ JWKS_URL: 'https://idp.example/jwks' });
    expect(config.jwt.algorithms).toEqual(['RS256', 'ES256', 'EdDSA']);
    expect(config.jwt.secret).toBeUndefined();
  });

  it.each([
    [{ PORT: 'abc' }, 'PORT must be a whole number from 1 to 65535 (got "abc")'],
    [{ PORT: '70000' }, 'PORT must be at most 65535 (got "70000")'],
    [{ PORT: '-1' }, 'PORT must be a whole number'],
    [{ ONDEMAND_SERVICE_URL: 'not a url' }, 'ONDEMAND_SERVICE_URL must be an absolute http or https URL'],
    [{ ONDEMAND_SERVICE_URL: 'ftp://files' }, 'ONDEMAND_SERVICE_URL must be an absolute http or https URL'],
    [{ LIVE_TV_SERVICE_URL: 'http://user:pw@livetv' }, 'LIVE_TV_SERVICE_URL must be an absolute'],
    [{ JWKS_URL: 'file:///etc/passwd' }, 'JWKS_URL must be an absolute'],
    [{ REDIS_URL: 'http://redis' }, 'REDIS_URL must be an absolute redis or rediss URL without query or fragment (credentials allowed'],
    [{ JWT_SECRET_KEY: 'x'.repeat(40), JWT_SECRET_KEY_FILE: '/run/secrets/jwt' }, 'JWT_SECRET_KEY and JWT_SECRET_KEY_FILE are both set: set one'],
    [{ REDIS_URL_FILE: '/nonexistent/redis-url' }, 'REDIS_URL_FILE: cannot read /nonexistent/redis-url (ENOENT)'],
    [{ UPSTREAM_TIMEOUT_MS: '0' }, 'UPSTREAM_TIMEOUT_MS must be at least 1'],
    [{ BODY_LIMIT_BYTES: '1e6' }, 'BODY_LIMIT_BYTES must be a whole number'],
    [{ TRUST_PROXY_HOPS: 'x' }, 'TRUST_PROXY_HOPS must be a whole number'],
    [{ RATE_LIMIT_PER_MINUTE: '-5' }, 'RATE_LIMIT_PER_MINUTE must be a whole number'],
    [{ RATE_LIMIT_IPV6_PREFIX: '0' }, 'RATE_LIMIT_IPV6_PREFIX must be at least 1'],
    [{ RATE_LIMIT_IPV6_PREFIX: '129' }, 'RATE_LIMIT_IPV6_PREFIX must be at most 128'],
    [{ LOG_LEVEL: 'loud' }, 'LOG_LEVEL must be one of fatal, error, warn, info, debug, trace, silent'],
    [{ NODE_ENV: 'staging' }, 'NODE_ENV must be one of development, production, test'],
    [{ GRAPHQL_INTROSPECTION: 'yes' }, 'GRAPHQL_INTROSPECTION must be one of true, false'],
    [{ JWT_ALGORITHM: 'none' }, 'JWT_ALGORITHM: "none" is never accepted'],
    [{ JWT_ALGORITHM: 'HS256,NoNe' }, 'JWT_ALGORITHM: "none" is never accepted'],
    [{ JWT_ALGORITHM: 'HS1' }, 'JWT_ALGORITHM: unsupported algorithm "HS1"'],
    [{ JWT_ALGORITHM: ' , ' }, 'JWT_ALGORITHM must name at least one algorithm'],
    [{ JWT_ALGORITHM: 'RS256' }, 'JWT_ALGORITHM lists RS256, which needs JWKS_URL'],
    [{ CORS_ORIGINS: '*' }, 'CORS_ORIGINS: "*" is not an origin'],
    [{ CORS_ORIGINS: 'https://*' }, 'CORS_ORIGINS: "https://*" is not an origin or an origin pattern'],
    [{ CORS_ORIGINS: '*.tv.example' }, 'CORS_ORIGINS: "*.tv.example" is not an origin'],
    [{ CORS_ORIGINS: 'https://app*.tv.example' }, 'CORS_ORIGINS: "https://app*.tv.example" is not an origin'],
    [{ CORS_ORIGINS: 'https://*.*.tv.example' }, 'CORS_ORIGINS: "https://*.*.tv.example" is not an origin'],
    [{ CORS_ALLOWED_HEADERS: 'x-device-id, bad header' }, 'CORS_ALLOWED_HEADERS: "bad header" is not a header name'],
    [{ TRUSTED_DOCUMENTS_MODE: 'require' }, 'TRUSTED_DOCUMENTS_MODE=require needs TRUSTED_DOCUMENTS'],
    [{ TRUSTED_DOCUMENTS_MODE: 'strict' }, 'TRUSTED_DOCUMENTS_MODE must be one of allow-arbitrary, require'],
    [{ TRUSTED_DOCUMENTS: '/nonexistent/manifest.json' }, 'TRUSTED_DOCUMENTS: cannot read /nonexistent/manifest.json as JSON (ENOENT)'],
    [{ TRUSTED_DOCUMENTS: 'package.json' }, 'TRUSTED_DOCUMENTS: package.json is neither an object of id → document nor an Apollo persisted query manifest'],
    [{ CORS_ORIGINS: 'https://tv.example/app' }, 'CORS_ORIGINS: "https://tv.example/app" is not an origin'],
    [{ NODE_ENV: 'production' }, 'NODE_ENV=production needs JWT_SECRET_KEY or JWKS_URL'],
    [{ NODE_ENV: 'production', JWKS_URL: 'https://idp.example/jwks', JWT_ALGORITHM: 'HS256' }, 'HS* algorithm, which needs JWT_SECRET_KEY in production'],
  ])('refuses %j with a message naming the variable', (env, message) => {
    expect(errorOf(env)).toContain(message);
  });

  it('never shows a secret in its message', () => {
    const message = errorOf({ JWT_SECRET_KEY: 'hunter2' });
    expect(message).toBe('JWT_SECRET_KEY must be at least 32 characters (256 bits)');
    expect(errorOf({ REDIS_URL: 'http://:s3cret@redis' })).not.toContain('s3cret');
  });

  it('reads each secret from its NAME_FILE (Docker and Kubernetes secrets), without the trailing line break', () => {
    const dir = mkdtempSync(join(tmpdir(), 'secrets-'));
    writeFileSync(join(dir, 'jwt'), `${SECRET}\n`);
    writeFileSync(join(dir, 'redis-url'), 'rediss://:s3cret@redis.internal:6380/0\n');
    writeFileSync(join(dir, 'redis-password'), 'an0ther\r\n');
    const config = loadConfig({ NODE_ENV: 'production', JWT_SECRET_KEY_FILE: join(dir, 'jwt'), REDIS_URL_FILE: join(dir, 'redis-url'), REDIS_PASSWORD_FILE: join(dir, 'redis-password') });
    expect(config.jwt.secret).toBe(SECRET);
    expect(config.redis).toEqual({ url: 'rediss://:s3cret@redis.internal:6380/0', password: 'an0ther', commandTimeoutMs: 250 });
    // A secret read from a file is checked as one given directly, and never shown either.
    writeFileSync(join(dir, 'short'), 'hunter2');
    expect(errorOf({ JWT_SECRET_KEY_FILE: join(dir, 'short') })).toBe('JWT_SECRET_KEY must be at least 32 characters (256 bits)');
  });
});

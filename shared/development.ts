/**
 * The development-only JWT key: what the gateway and the reference services sign and verify with when
 * no JWT_SECRET_KEY is set, outside production. (A module of its own: the services need it without
 * loading the gateway's configuration schema.)
 */
export const DEVELOPMENT_JWT_SECRET = 'development-only-jwt-secret-do-not-use-in-production';

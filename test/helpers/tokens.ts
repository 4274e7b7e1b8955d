import { SignJWT, type JWTPayload } from 'jose';

export const TEST_SECRET = 'test-only-secret-key-that-is-long-enough-for-hs256';
const key = new TextEncoder().encode(TEST_SECRET);

/** An HS256 token signed with TEST_SECRET: one hour, the given subject and roles, unless overridden. */
export async function signToken(claims: JWTPayload & { roles?: unknown } = {}, options: { secret?: string; alg?: string; expiresIn?: string | null } = {}): Promise<string> {
  const { sub = '1', roles = ['user'], ...rest } = claims;
  let jwt = new SignJWT({ roles, ...rest } as JWTPayload).setProtectedHeader({ alg: options.alg ?? 'HS256', typ: 'JWT' }).setIssuedAt();
  if (sub !== null) jwt = jwt.setSubject(String(sub));
  if (options.expiresIn !== null) jwt = jwt.setExpirationTime(options.expiresIn ?? '1h');
  return jwt.sign(options.secret ? new TextEncoder().encode(options.secret) : key);
}

export const userToken = (sub = '1') => signToken({ sub, roles: ['user'] });
export const adminToken = (sub = '3') => signToken({ sub, roles: ['user', 'admin'] });

/** A user's token (subject 42) and an admin's (subject 7): the callers of the route-by-route tests. */
export async function userAndAdminTokens(): Promise<{ user: string; admin: string }> {
  return { user: await userToken('42'), admin: await adminToken('7') };
}

/** A token with the same header and claims encoding but no signature check possible: alg "none". */
export function unsignedToken(header: Record<string, unknown>, payload: Record<string, unknown>): string {
  const encode = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
  return `${encode(header)}.${encode(payload)}.`;
}

import type { IncomingHttpHeaders } from 'node:http';
import { callService } from './client.js';
import type { ServiceEnvironment } from './environment.js';
import { HttpError } from './errors.js';
import type { User } from '../../shared/records.js';
import { ROLES } from '../../shared/upstreams.js';

/** The caller as the gateway vouches for it in `X-User-ID` / `X-User-Roles`. */
export interface Caller {
  readonly id: string;
  readonly roles: readonly string[];
}

export function callerOf(headers: IncomingHttpHeaders): Caller | undefined {
  const id = headers['x-user-id'];
  if (typeof id !== 'string' || id === '') return undefined;
  const rolesHeader = headers['x-user-roles'];
  const roles =
    typeof rolesHeader === 'string'
      ? rolesHeader
          .split(',')
          .map((role) => role.trim())
          .filter((role) => role !== '')
      : [];
  return { id, roles };
}

export function requireCaller(headers: IncomingHttpHeaders): Caller {
  const caller = callerOf(headers);
  if (!caller) throw new HttpError(401, 'Not authenticated');
  return caller;
}

/** The roles the user store holds for a user now: a token's roles may be an hour old. */
export type CurrentRoles = (userId: string) => Promise<readonly string[]> | readonly string[];

/**
 * Admin actions: the token must say admin (the gateway checked it too), and so must the user store,
 * now — a demoted admin's token still says admin until it expires.
 */
export async function requireAdmin(headers: IncomingHttpHeaders, currentRoles: CurrentRoles): Promise<Caller> {
  const caller = requireCaller(headers);
  if (!caller.roles.includes(ROLES.admin) || !(await currentRoles(caller.id)).includes(ROLES.admin)) throw new HttpError(403, 'Admin access required');
  return caller;
}

/** A user's current roles, asked of user management over its internal API (none for an unknown user). */
export function rolesFromUserStore(env: ServiceEnvironment): CurrentRoles {
  return async (userId) => {
    const user = await callService<User | undefined>(env, 'users', `/internal/users/${encodeURIComponent(userId)}`, { on: { 404: () => undefined } });
    return user?.roles ?? [];
  };
}

/** Headers that carry the caller's identity on to another service. */
export function identityHeaders(headers: IncomingHttpHeaders): Record<string, string> {
  const forwarded: Record<string, string> = {};
  for (const name of ['x-user-id', 'x-user-roles', 'x-request-id']) {
    const value = headers[name];
    if (typeof value === 'string') forwarded[name] = value;
  }
  return forwarded;
}

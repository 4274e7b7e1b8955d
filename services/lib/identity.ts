import type { IncomingHttpHeaders } from 'node:http';
import { HttpError } from './errors.js';

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

/** Defence in depth: the gateway already checked the role, the service checks it again. */
export function requireAdmin(headers: IncomingHttpHeaders): Caller {
  const caller = requireCaller(headers);
  if (!caller.roles.includes('admin')) throw new HttpError(403, 'Admin access required');
  return caller;
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

import { HttpError } from './lib/errors.js';
import { requireAdmin, requireCaller } from './lib/identity.js';
import type { ServiceDefinition } from './lib/service.js';
import { DEMO_USERS } from './data/catalog.js';
import { specPath } from '../gateway/src/upstreams.js';

interface User {
  id: string;
  username: string;
  email?: string;
  roles: string[];
}

export function usersService(): ServiceDefinition {
  const users = new Map<string, User>(DEMO_USERS.map(({ id, username, email, roles }) => [id, { id, username, email, roles: [...roles] }]));

  function userOrNotFound(id: string): User {
    const user = users.get(id);
    if (!user) throw new HttpError(404, 'User not found');
    return user;
  }

  // This service is the user store: a caller's roles are read from it, not from the token.
  const currentRoles = (id: string): readonly string[] => users.get(id)?.roles ?? [];

  return {
    name: 'users',
    spec: specPath('users'),
    handlers: {
      me: ({ headers }) => ({ body: userOrNotFound(requireCaller(headers).id) }),

      updateMe({ headers, body }) {
        const user = userOrNotFound(requireCaller(headers).id);
        const { email } = body as { email?: string };
        if (email !== undefined) user.email = email;
        return { body: user };
      },

      usersByIds({ headers, query }) {
        const caller = requireCaller(headers);
        const ids = [...new Set(query.ids as string[])];
        if (!currentRoles(caller.id).includes('admin') && ids.some((id) => id !== caller.id)) {
          throw new HttpError(403, 'Only admins may read other users');
        }
        return { body: { items: ids.flatMap((id) => users.get(id) ?? []) } };
      },

      async adminUsers({ headers, query }) {
        await requireAdmin(headers, currentRoles);
        const limit = query.limit as number;
        const offset = query.offset as number;
        const ordered = [...users.values()].sort((a, b) => Number(a.id) - Number(b.id));
        return { body: ordered.slice(offset, offset + limit) };
      },

      async adminSetUserRoles({ headers, params, body }) {
        await requireAdmin(headers, currentRoles);
        const user = userOrNotFound(params.id as string);
        user.roles = [...(body as { roles: string[] }).roles];
        return { body: user };
      },

      createUserProfile({ body }) {
        const { id, username, email } = body as { id: string; username: string; email: string };
        if (users.has(id) || [...users.values()].some((user) => user.username === username)) {
          throw new HttpError(409, 'User already exists');
        }
        const user: User = { id, username, email, roles: ['user'] };
        users.set(id, user);
        return { status: 201, body: user };
      },

      userProfile: ({ params }) => ({ body: userOrNotFound(params.id as string) }),
      usersHealth: () => ({ body: { status: 'ok', service: 'users' } }),
    },
  };
}

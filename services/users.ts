import type { operations } from '../shared/api/users.js';
import type { User } from '../shared/records.js';
import { DEMO_USERS } from './data/catalog.js';
import { foundOr404, HttpError } from './lib/errors.js';
import { requireCaller } from './lib/identity.js';
import { defaulted, defineService } from './lib/service.js';
import { ROLES } from '../shared/upstreams.js';

interface UsersState {
  readonly users: Map<string, User>;
}

/** This service is the user store: a caller's roles are read from it, not from the token. */
const currentRoles =
  ({ users }: UsersState) =>
  (id: string): readonly string[] =>
    users.get(id)?.roles ?? [];

export const usersService = defineService<operations>()({
  name: 'users',
  currentRoles,
  state: (): UsersState => ({ users: new Map(DEMO_USERS.map(({ id, username, email, roles }) => [id, { id, username, email, roles: [...roles] }])) }),
  handlers: {
    me: ({ headers }, { state }) => ({ body: foundOr404(state.users, requireCaller(headers).id, 'User') }),

    updateMe({ headers, body }, { state }) {
      const user = foundOr404(state.users, requireCaller(headers).id, 'User');
      if (body.email !== undefined) user.email = body.email;
      return { body: user };
    },

    usersByIds({ headers, query }, { state }) {
      const caller = requireCaller(headers);
      const ids = [...new Set(query.ids)];
      if (!currentRoles(state)(caller.id).includes(ROLES.admin) && ids.some((id) => id !== caller.id)) {
        throw new HttpError(403, 'Only admins may read other users');
      }
      return { body: { items: ids.flatMap((id) => state.users.get(id) ?? []) } };
    },

    adminUsers({ query }, { state }) {
      const limit = defaulted(query.limit);
      const offset = defaulted(query.offset);
      const ordered = [...state.users.values()].sort((a, b) => Number(a.id) - Number(b.id));
      return { body: ordered.slice(offset, offset + limit) };
    },

    adminSetUserRoles({ params, body }, { state }) {
      const user = foundOr404(state.users, params.id, 'User');
      user.roles = [...body.roles];
      return { body: user };
    },

    createUserProfile({ body: { id, username, email } }, { state }) {
      if (state.users.has(id) || [...state.users.values()].some((user) => user.username === username)) {
        throw new HttpError(409, 'User already exists');
      }
      const user: User = { id, username, email, roles: [ROLES.user] };
      state.users.set(id, user);
      return { status: 201, body: user };
    },

    userProfile: ({ params }, { state }) => ({ body: foundOr404(state.users, params.id, 'User') }),
  },
});

import type { operations } from '../shared/api/users.js';
import type { User } from '../shared/records.js';
import { ROLES } from '../shared/upstreams.js';
import { DEMO_USERS } from './data/catalog.js';
import type { Database, Queryable } from './lib/database.js';
import { sql } from './lib/sql.js';
import { found, HttpError } from './lib/errors.js';
import { requireCaller } from './lib/identity.js';
import { defaulted, defineService } from './lib/service.js';

/** A profile's columns, as the spec's User. */
const USER = sql`id, username, email, roles`;

const profileOf = (db: Queryable, id: string) => db.row<User>(sql`select ${USER} from users.profiles where id = ${id}`);

/** This service is the user store: a caller's roles are read from it, not from the token. */
const currentRoles =
  ({ db }: { db: Database }) =>
  async (id: string): Promise<readonly string[]> =>
    (await profileOf(db, id))?.roles ?? [];

export const usersService = defineService<operations>()({
  name: 'users',
  database: {
    async seed(tx) {
      for (const { id, username, email, roles } of DEMO_USERS) await tx.rows(sql`insert into users.profiles (id, username, email, roles) values (${id}, ${username}, ${email}, ${roles})`);
    },
  },
  currentRoles,
  state: (_env, db) => ({ db }),
  handlers: {
    me: async ({ headers }, { state: { db } }) => ({ body: found(await profileOf(db, requireCaller(headers).id), 'User') }),

    async updateMe({ headers, body }, { state: { db } }) {
      const { id } = requireCaller(headers);
      const updated = body.email === undefined ? await profileOf(db, id) : await db.row<User>(sql`update users.profiles set email = ${body.email} where id = ${id} returning ${USER}`);
      return { body: found(updated, 'User') };
    },

    async usersByIds({ headers, query }, { state }) {
      const caller = requireCaller(headers);
      const ids = [...new Set(query.ids)];
      if (!(await currentRoles(state)(caller.id)).includes(ROLES.admin) && ids.some((id) => id !== caller.id)) {
        throw new HttpError(403, 'Only admins may read other users');
      }
      const users = new Map((await state.db.rows<User>(sql`select ${USER} from users.profiles where id = any(${ids})`)).map((user) => [user.id, user]));
      return { body: { items: ids.flatMap((id) => users.get(id) ?? []) } };
    },

    // Ordered by id as a number (the ids are numbers): shorter first, then as text.
    adminUsers: async ({ query }, { state: { db } }) => ({
      body: await db.rows<User>(sql`select ${USER} from users.profiles order by length(id), id limit ${defaulted(query.limit)} offset ${defaulted(query.offset)}`),
    }),

    adminSetUserRoles: async ({ params, body }, { state: { db } }) => ({
      body: found(await db.row<User>(sql`update users.profiles set roles = ${body.roles} where id = ${params.id} returning ${USER}`), 'User'),
    }),

    async createUserProfile({ body: { id, username, email } }, { state: { db } }) {
      // The id and the username are each unique: of two registrations of either, one loses here, whatever the timing.
      const user = await db.row<User>(sql`insert into users.profiles (id, username, email, roles) values (${id}, ${username}, ${email}, ${[ROLES.user]}) on conflict do nothing returning ${USER}`);
      if (!user) throw new HttpError(409, 'User already exists');
      return { status: 201, body: user };
    },

    async deleteUserProfile({ params }, { state: { db } }) {
      await db.rows(sql`delete from users.profiles where id = ${params.id}`);
      return { status: 204 };
    },

    userProfile: async ({ params }, { state: { db } }) => ({ body: found(await profileOf(db, params.id), 'User') }),
  },
});

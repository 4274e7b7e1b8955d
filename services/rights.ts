import type { operations } from '../shared/api/rights.js';
import type { Channel, Entitlement, Grant, Movie, Plan, UserSubscription } from '../shared/records.js';
import { ROLES, type ContentKind } from '../shared/upstreams.js';
import { DEMO_SUBSCRIPTION_START, DEMO_USERS, PLANS } from './data/catalog.js';
import { Cached, CachedByKey, READ_AGAIN_MS } from './lib/cached.js';
import { callService } from './lib/client.js';
import type { Queryable } from './lib/database.js';
import { sql } from './lib/sql.js';
import type { ServiceEnvironment } from './lib/environment.js';
import { HttpError } from './lib/errors.js';
import { identityHeaders, requireCaller, rolesFromUserStore } from './lib/identity.js';
import { defineService } from './lib/service.js';

type Feature = Plan['includes'][number];

const PLAN_FEATURE = { movie: 'movies', channel: 'channels' } as const;

/** Where each kind of content is catalogued, and its batch lookup (answers `{ items: [{ id, free }] }`). */
const CATALOGUES = {
  movie: { upstream: 'ondemand', batchPath: '/ondemand/movies/batch?ids=' },
  channel: { upstream: 'livetv', batchPath: '/livetv/channels/batch?ids=' },
} as const;

const SUBSCRIPTION = sql`plan_id as "planId", status, started_at as "startedAt"`;
const GRANT = sql`id, user_id as "userId", content_id as "contentId", created_at as "createdAt", expires_at as "expiresAt"`;

type SubscriptionRow = Omit<UserSubscription, 'startedAt'> & { readonly startedAt: Date };
type GrantRow = Omit<Grant, 'createdAt' | 'expiresAt'> & { readonly createdAt: Date; readonly expiresAt: Date | null };

const subscriptionOf = ({ planId, status, startedAt }: SubscriptionRow): UserSubscription => ({ planId, status, startedAt: startedAt.toISOString() });

const grantOf = ({ id, userId, contentId, createdAt, expiresAt }: GrantRow): Grant => ({ id, userId, contentId, ...(expiresAt === null ? {} : { expiresAt: expiresAt.toISOString() }), createdAt: createdAt.toISOString() });

/** Whether each asked content id exists and is free, from the catalogue services (one call each at most). */
async function freeFlags(env: ServiceEnvironment, contentIds: readonly string[], headers: Record<string, string>): Promise<Map<string, boolean>> {
  const flags = new Map<string, boolean>();
  const lookups = (Object.keys(CATALOGUES) as ContentKind[]).map(async (kind) => {
    const { upstream, batchPath } = CATALOGUES[kind];
    const ids = contentIds.filter((id) => id.startsWith(`${kind}:`)).map((id) => encodeURIComponent(id.slice(kind.length + 1)));
    if (ids.length === 0) return;
    const batch = await callService<{ items: Pick<Movie | Channel, 'id' | 'free'>[] }>(env, upstream, batchPath + ids.join(','), { headers });
    for (const item of batch.items) flags.set(`${kind}:${item.id}`, item.free);
  });
  await Promise.all(lookups);
  return flags;
}

/** What a user may play besides free content: read for every entitlement, changed by a subscription or an admin's grant. */
interface Rights {
  /** What the user's active subscription entitles to. */
  readonly features: ReadonlySet<Feature>;
  /** The user's grants: content id, and until when (ms; none: for good). */
  readonly grants: ReadonlyMap<string, number | null>;
}

/** How many users' rights are kept at most (the least recently asked go first). */
const USERS_KEPT = 10_000;

async function readRights(db: Queryable, userId: string): Promise<Rights> {
  const [row] = await db.rows<{ features: Feature[] | null; grants: { contentId: string; expiresAt: string | null }[] | null }>(
    sql`select
          (select array_agg(e.feature) from rights.subscription_entitlements e join rights.subscriptions s using (user_id) where e.user_id = ${userId} and s.status = 'active') as features,
          (select json_agg(json_build_object('contentId', content_id, 'expiresAt', expires_at)) from rights.grants where user_id = ${userId}) as grants`,
  );
  const grants = new Map<string, number | null>();
  for (const { contentId, expiresAt } of row?.grants ?? []) {
    const until = expiresAt === null ? null : Date.parse(expiresAt);
    const known = grants.get(contentId);
    // Of two grants of the same content, the one that lasts longer.
    if (known !== null && (until === null || known === undefined || until > known)) grants.set(contentId, until);
  }
  return { features: new Set(row?.features ?? []), grants };
}

function decide(rights: Rights, contentId: string, free: boolean | undefined, nowMs: number): Entitlement {
  if (free === undefined) return { contentId, canPlay: false, reason: 'unknown_content' };
  if (free) return { contentId, canPlay: true, reason: 'free' };
  if (rights.features.has(PLAN_FEATURE[contentId.split(':')[0] as ContentKind])) return { contentId, canPlay: true, reason: 'subscription' };
  const until = rights.grants.get(contentId);
  if (until === null || (until !== undefined && until > nowMs)) return { contentId, canPlay: true, reason: 'grant' };
  return { contentId, canPlay: false, reason: 'subscription_required' };
}

/**
 * Subscribes a user to a plan, in the caller's transaction: the subscription and what it entitles to
 * (the plan's features, as they are now) are written together or not at all. 404 for an unknown plan.
 */
async function subscribe(tx: Queryable, userId: string, planId: string, startedAt: Date): Promise<UserSubscription> {
  const plan = await tx.row<{ includes: Feature[] }>(sql`select includes from rights.plans where id = ${planId}`);
  if (!plan) throw new HttpError(404, 'Plan not found');
  const subscription = await tx.one<SubscriptionRow>(
    sql`insert into rights.subscriptions (user_id, plan_id, status, started_at) values (${userId}, ${planId}, 'active', ${startedAt})
        on conflict (user_id) do update set plan_id = excluded.plan_id, status = excluded.status, started_at = excluded.started_at
        returning ${SUBSCRIPTION}`,
  );
  await tx.rows(sql`delete from rights.subscription_entitlements where user_id = ${userId}`);
  await tx.rows(sql`insert into rights.subscription_entitlements (user_id, feature) select ${userId}, unnest(${plan.includes}::text[])`);
  return subscriptionOf(subscription);
}

/** Another user's data is an admin's to read: asked of the user store only when it matters. */
async function mayRead(env: ServiceEnvironment, callerId: string, userIds: readonly string[]): Promise<void> {
  if (userIds.every((id) => id === callerId)) return;
  if (!(await rolesFromUserStore(env)(callerId)).includes(ROLES.admin)) throw new HttpError(403, 'Only admins may read other users');
}

export const rightsService = defineService<operations>()({
  name: 'rights',
  database: {
    async seed(tx) {
      for (const { id, name, description, monthlyPriceCents, includes } of PLANS) {
        await tx.rows(sql`insert into rights.plans (id, name, description, monthly_price_cents, includes) values (${id}, ${name}, ${description}, ${monthlyPriceCents}, ${includes})`);
      }
      // Already in the migrations' transaction.
      for (const user of DEMO_USERS) if (user.planId) await subscribe(tx, user.id, user.planId, new Date(DEMO_SUBSCRIPTION_START));
    },
  },
  state: (_env, db) => ({
    db,
    plans: new Cached(() => db.rows<Plan>(sql`select id, name, description, monthly_price_cents as "monthlyPriceCents", includes from rights.plans order by seq`), READ_AGAIN_MS),
    rights: new CachedByKey((userId) => readRights(db, userId), READ_AGAIN_MS, USERS_KEPT),
  }),
  handlers: {
    plans: async (_request, { state: { plans } }) => ({ body: await plans.get() }),

    async mySubscription({ headers }, { state: { db } }) {
      const subscription = await db.row<SubscriptionRow>(sql`select ${SUBSCRIPTION} from rights.subscriptions where user_id = ${requireCaller(headers).id}`);
      if (!subscription) throw new HttpError(404, 'No subscription');
      return { body: subscriptionOf(subscription) };
    },

    async subscribe({ headers, body: { planId } }, { state: { db, rights } }) {
      const caller = requireCaller(headers);
      const subscription = await db.transaction((tx) => subscribe(tx, caller.id, planId, new Date()));
      rights.invalidate(caller.id);
      return { status: 201, body: subscription };
    },

    async subscriptionsByUserIds({ headers, query }, { state: { db }, env }) {
      const caller = requireCaller(headers);
      const userIds = [...new Set(query.userIds)];
      await mayRead(env, caller.id, userIds);
      const rows = await db.rows<SubscriptionRow & { userId: string }>(sql`select user_id as "userId", ${SUBSCRIPTION} from rights.subscriptions where user_id = any(${userIds})`);
      const subscriptions = new Map(rows.map((row) => [row.userId, subscriptionOf(row)]));
      return { body: { items: userIds.flatMap((userId) => { const subscription = subscriptions.get(userId); return subscription ? [{ userId, ...subscription }] : []; }) } };
    },

    async entitlements({ headers, query }, { state, env }) {
      const caller = requireCaller(headers);
      const [flags, rights] = await Promise.all([freeFlags(env, [...new Set(query.contentIds)], identityHeaders(headers)), state.rights.get(caller.id)]);
      const nowMs = Date.now();
      return { body: { items: query.contentIds.map((contentId) => decide(rights, contentId, flags.get(contentId), nowMs)) } };
    },

    async adminEntitlementGrants({ query: { userId } }, { state: { db } }) {
      const grants = await db.rows<GrantRow>(sql`select ${GRANT} from rights.grants ${userId === undefined ? sql`` : sql`where user_id = ${userId}`} order by seq`);
      return { body: grants.map(grantOf) };
    },

    async adminGrantEntitlement({ body: { userId, contentId, expiresAt } }, { state: { db, rights } }) {
      const grant = await db.one<GrantRow>(sql`insert into rights.grants (user_id, content_id, expires_at) values (${userId}, ${contentId}, ${expiresAt ?? null}) returning ${GRANT}`);
      rights.invalidate(userId);
      return { status: 201, body: grantOf(grant) };
    },

    async adminRevokeEntitlement({ params }, { state: { db, rights } }) {
      const revoked = await db.row<{ userId: string }>(sql`delete from rights.grants where id = ${params.id} returning user_id as "userId"`);
      if (!revoked) throw new HttpError(404, 'Grant not found');
      rights.invalidate(revoked.userId);
      return { status: 204 };
    },
  },
});

import type { operations } from '../shared/api/rights.js';
import type { Channel, Entitlement, Grant, Movie, UserSubscription } from '../shared/records.js';
import { ROLES, type ContentKind } from '../shared/upstreams.js';
import { DEMO_SUBSCRIPTION_START, DEMO_USERS, PLANS } from './data/catalog.js';
import { callService } from './lib/client.js';
import type { ServiceEnvironment } from './lib/environment.js';
import { HttpError } from './lib/errors.js';
import { identityHeaders, requireCaller, rolesFromUserStore } from './lib/identity.js';
import { defineService } from './lib/service.js';

interface RightsState {
  readonly subscriptions: Map<string, UserSubscription>;
  readonly grants: Grant[];
  nextGrantId: number;
}

const PLAN_FEATURE = { movie: 'movies', channel: 'channels' } as const;

/** Where each kind of content is catalogued, and its batch lookup (answers `{ items: [{ id, free }] }`). */
const CATALOGUES = {
  movie: { upstream: 'ondemand', batchPath: '/ondemand/movies/batch?ids=' },
  channel: { upstream: 'livetv', batchPath: '/livetv/channels/batch?ids=' },
} as const;

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

function decide(state: RightsState, userId: string, contentId: string, free: boolean | undefined, nowMs: number): Entitlement {
  if (free === undefined) return { contentId, canPlay: false, reason: 'unknown_content' };
  if (free) return { contentId, canPlay: true, reason: 'free' };
  const kind = contentId.split(':')[0] as ContentKind;
  const subscription = state.subscriptions.get(userId);
  const plan = PLANS.find((candidate) => candidate.id === subscription?.planId);
  if (subscription?.status === 'active' && plan?.includes.includes(PLAN_FEATURE[kind])) {
    return { contentId, canPlay: true, reason: 'subscription' };
  }
  const granted = state.grants.some((grant) => grant.userId === userId && grant.contentId === contentId && (!grant.expiresAt || Date.parse(grant.expiresAt) > nowMs));
  if (granted) return { contentId, canPlay: true, reason: 'grant' };
  return { contentId, canPlay: false, reason: 'subscription_required' };
}

/** Another user's data is an admin's to read: asked of the user store only when it matters. */
async function mayRead(env: ServiceEnvironment, callerId: string, userIds: readonly string[]): Promise<void> {
  if (userIds.every((id) => id === callerId)) return;
  if (!(await rolesFromUserStore(env)(callerId)).includes(ROLES.admin)) throw new HttpError(403, 'Only admins may read other users');
}

export const rightsService = defineService<operations>()({
  name: 'rights',
  state: (): RightsState => ({
    subscriptions: new Map(DEMO_USERS.flatMap((user) => (user.planId ? [[user.id, { planId: user.planId, status: 'active', startedAt: DEMO_SUBSCRIPTION_START }]] : []))),
    grants: [],
    nextGrantId: 1,
  }),
  handlers: {
    plans: () => ({ body: [...PLANS] }),

    mySubscription({ headers }, { state }) {
      const subscription = state.subscriptions.get(requireCaller(headers).id);
      if (!subscription) throw new HttpError(404, 'No subscription');
      return { body: subscription };
    },

    subscribe({ headers, body: { planId } }, { state }) {
      const caller = requireCaller(headers);
      if (!PLANS.some((plan) => plan.id === planId)) throw new HttpError(404, 'Plan not found');
      const subscription: UserSubscription = { planId, status: 'active', startedAt: new Date().toISOString() };
      state.subscriptions.set(caller.id, subscription);
      return { status: 201, body: subscription };
    },

    async subscriptionsByUserIds({ headers, query }, { state, env }) {
      const caller = requireCaller(headers);
      const userIds = [...new Set(query.userIds)];
      await mayRead(env, caller.id, userIds);
      return {
        body: {
          items: userIds.flatMap((userId) => {
            const subscription = state.subscriptions.get(userId);
            return subscription ? [{ userId, ...subscription }] : [];
          }),
        },
      };
    },

    async entitlements({ headers, query }, { state, env }) {
      const caller = requireCaller(headers);
      const flags = await freeFlags(env, [...new Set(query.contentIds)], identityHeaders(headers));
      const nowMs = Date.now();
      return { body: { items: query.contentIds.map((contentId) => decide(state, caller.id, contentId, flags.get(contentId), nowMs)) } };
    },

    adminEntitlementGrants({ query }, { state }) {
      return { body: query.userId === undefined ? state.grants : state.grants.filter((grant) => grant.userId === query.userId) };
    },

    adminGrantEntitlement({ body }, { state }) {
      const grant: Grant = { id: `g${state.nextGrantId++}`, ...body, createdAt: new Date().toISOString() };
      state.grants.push(grant);
      return { status: 201, body: grant };
    },

    adminRevokeEntitlement({ params }, { state }) {
      const index = state.grants.findIndex((grant) => grant.id === params.id);
      if (index === -1) throw new HttpError(404, 'Grant not found');
      state.grants.splice(index, 1);
      return { status: 204 };
    },
  },
});

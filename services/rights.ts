import { callService } from './lib/client.js';
import { HttpError } from './lib/errors.js';
import type { ServiceEnvironment } from './lib/environment.js';
import { identityHeaders, requireAdmin, requireCaller, rolesFromUserStore } from './lib/identity.js';
import type { ServiceDefinition } from './lib/service.js';
import { DEMO_SUBSCRIPTION_START, DEMO_USERS, PLANS } from './data/catalog.js';
import { specPath } from '../gateway/src/upstreams.js';

interface Subscription {
  planId: string;
  status: 'active' | 'cancelled';
  startedAt: string;
}

interface Grant {
  id: string;
  userId: string;
  contentId: string;
  createdAt: string;
  expiresAt?: string;
}

type Reason = 'free' | 'subscription' | 'grant' | 'subscription_required' | 'unknown_content';

interface Entitlement {
  contentId: string;
  canPlay: boolean;
  reason: Reason;
}

const KIND_TO_PLAN_FEATURE = { movie: 'movies', channel: 'channels' } as const;

export function rightsService(env: ServiceEnvironment): ServiceDefinition {
  const currentRoles = rolesFromUserStore(env);
  const subscriptions = new Map<string, Subscription>();
  for (const user of DEMO_USERS) {
    if (user.planId) subscriptions.set(user.id, { planId: user.planId, status: 'active', startedAt: DEMO_SUBSCRIPTION_START });
  }
  const grants: Grant[] = [];
  let nextGrantId = 1;

  const catalogues = {
    movie: { title: 'on-demand', baseUrl: () => env.urls.ondemand, batchPath: '/ondemand/movies/batch?ids=' },
    channel: { title: 'live TV', baseUrl: () => env.urls.livetv, batchPath: '/livetv/channels/batch?ids=' },
  } as const;

  /** Whether each asked content id exists and is free, from the catalogue services (one call each at most). */
  async function freeFlags(contentIds: readonly string[], headers: Record<string, string>): Promise<Map<string, boolean>> {
    const flags = new Map<string, boolean>();
    const lookups = Object.entries(catalogues).map(async ([kind, catalogue]) => {
      const ids = contentIds.filter((id) => id.startsWith(`${kind}:`)).map((id) => encodeURIComponent(id.slice(kind.length + 1)));
      if (ids.length === 0) return;
      const answer = await callService<{ items: { id: string; free: boolean }[] }>(catalogue.title, catalogue.baseUrl(), catalogue.batchPath + ids.join(','), { headers });
      if (answer.status !== 200) throw new HttpError(503, `The ${catalogue.title} service is unavailable`);
      for (const item of answer.body.items) flags.set(`${kind}:${item.id}`, item.free);
    });
    await Promise.all(lookups);
    return flags;
  }

  function decide(userId: string, contentId: string, free: boolean | undefined, nowMs: number): Entitlement {
    if (free === undefined) return { contentId, canPlay: false, reason: 'unknown_content' };
    if (free) return { contentId, canPlay: true, reason: 'free' };
    const kind = contentId.split(':')[0] as keyof typeof KIND_TO_PLAN_FEATURE;
    const subscription = subscriptions.get(userId);
    const plan = PLANS.find((candidate) => candidate.id === subscription?.planId);
    if (subscription?.status === 'active' && plan?.includes.includes(KIND_TO_PLAN_FEATURE[kind])) {
      return { contentId, canPlay: true, reason: 'subscription' };
    }
    const granted = grants.some(
      (grant) => grant.userId === userId && grant.contentId === contentId && (!grant.expiresAt || Date.parse(grant.expiresAt) > nowMs),
    );
    if (granted) return { contentId, canPlay: true, reason: 'grant' };
    return { contentId, canPlay: false, reason: 'subscription_required' };
  }

  /** Another user's data is an admin's to read: asked of the user store only when it matters. */
  async function mayRead(callerId: string, userIds: readonly string[]): Promise<void> {
    if (userIds.every((id) => id === callerId)) return;
    if (!(await currentRoles(callerId)).includes('admin')) throw new HttpError(403, 'Only admins may read other users');
  }

  return {
    name: 'rights',
    spec: specPath('rights'),
    handlers: {
      plans: () => ({ body: PLANS }),

      mySubscription({ headers }) {
        const subscription = subscriptions.get(requireCaller(headers).id);
        if (!subscription) throw new HttpError(404, 'No subscription');
        return { body: subscription };
      },

      subscribe({ headers, body }) {
        const caller = requireCaller(headers);
        const { planId } = body as { planId: string };
        if (!PLANS.some((plan) => plan.id === planId)) throw new HttpError(404, 'Plan not found');
        const subscription: Subscription = { planId, status: 'active', startedAt: new Date().toISOString() };
        subscriptions.set(caller.id, subscription);
        return { status: 201, body: subscription };
      },

      async subscriptionsByUserIds({ headers, query }) {
        const caller = requireCaller(headers);
        const userIds = [...new Set(query.userIds as string[])];
        await mayRead(caller.id, userIds);
        return {
          body: {
            items: userIds.flatMap((userId) => {
              const subscription = subscriptions.get(userId);
              return subscription ? [{ userId, ...subscription }] : [];
            }),
          },
        };
      },

      async entitlements({ headers, query }) {
        const caller = requireCaller(headers);
        const contentIds = query.contentIds as string[];
        const flags = await freeFlags([...new Set(contentIds)], identityHeaders(headers));
        const nowMs = Date.now();
        return { body: { items: contentIds.map((contentId) => decide(caller.id, contentId, flags.get(contentId), nowMs)) } };
      },

      async adminEntitlementGrants({ headers, query }) {
        await requireAdmin(headers, currentRoles);
        const userId = query.userId as string | undefined;
        return { body: userId === undefined ? grants : grants.filter((grant) => grant.userId === userId) };
      },

      async adminGrantEntitlement({ headers, body }) {
        await requireAdmin(headers, currentRoles);
        const input = body as { userId: string; contentId: string; expiresAt?: string };
        const grant: Grant = { id: `g${nextGrantId++}`, ...input, createdAt: new Date().toISOString() };
        grants.push(grant);
        return { status: 201, body: grant };
      },

      async adminRevokeEntitlement({ headers, params }) {
        await requireAdmin(headers, currentRoles);
        const index = grants.findIndex((grant) => grant.id === params.id);
        if (index === -1) throw new HttpError(404, 'Grant not found');
        grants.splice(index, 1);
        return { status: 204 };
      },

      rightsHealth: () => ({ body: { status: 'ok', service: 'rights' } }),
    },
  };
}

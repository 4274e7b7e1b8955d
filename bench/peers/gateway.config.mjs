// The GraphQL peer: Hive Gateway serving the Mesh-composed supergraph (mesh.config.mjs), configured as a
// team would for this backend: the JWT verified on every request (HS256, the services' secret), the
// caller's identity sent to the services as X-User-ID / X-User-Roles, and the cross-service fields the
// benchmark's queries use (a movie's entitlement, a search hit's movie or channel) joined in batches.
// The benchmark sets BENCH_SUPERGRAPH and JWT_SECRET_KEY; BENCH_RESPONSE_CACHE=on turns on Hive Gateway's
// own response cache (@graphql-mesh/plugin-response-cache through its `responseCaching` option).
import { createInlineSigningKeyProvider, defineConfig, extractFromHeader } from '@graphql-hive/gateway';
import InMemoryLRUCache from '@graphql-mesh/cache-inmemory-lru';
import DataLoader from 'dataloader';

/**
 * The joins the benchmark's queries need, each one batched call per request (a DataLoader per request
 * and join): the Mesh way of extending a composed schema with resolvers over the in-context SDK.
 */
const JOINS = {
  entitlement: { source: 'RightsManagement', field: 'entitlements', arg: 'contentIds', keyOf: (item) => item.contentId, selectionSet: '{ ... on RightsManagement_EntitlementBatch { items { contentId canPlay reason } } }' },
  movie: { source: 'OnDemand', field: 'moviesByIds', arg: 'ids', keyOf: (item) => item.id, selectionSet: '{ ... on OnDemand_MovieBatch { items { id title year genres durationMinutes free } } }' },
  channel: { source: 'LiveTv', field: 'channelsByIds', arg: 'ids', keyOf: (item) => item.id, selectionSet: '{ ... on LiveTv_ChannelBatch { items { id name number free } } }' },
};
const loaders = new WeakMap();

function loaderOf(join, context, info) {
  let perRequest = loaders.get(context);
  if (!perRequest) loaders.set(context, (perRequest = new Map()));
  let loader = perRequest.get(join);
  if (!loader) {
    const { source, field, arg, keyOf, selectionSet } = JOINS[join];
    loader = new DataLoader(async (keys) => {
      const batch = await context[source].Query[field]({ root: {}, args: { [arg]: keys }, context, info, selectionSet });
      if (batch instanceof Error) throw batch;
      const byKey = new Map(batch.items.map((item) => [keyOf(item), item]));
      return keys.map((key) => byKey.get(key) ?? null);
    });
    perRequest.set(join, loader);
  }
  return loader;
}

export const gatewayConfig = defineConfig({
  supergraph: process.env.BENCH_SUPERGRAPH,
  logging: 'error',
  ...(process.env.BENCH_RESPONSE_CACHE === 'on' && {
    // Its default store keeps 1,000 entries, and the plugin writes two per entity of a response besides
    // the response (for invalidation): with 1,000 users that store would evict before anything is read
    // again. Sized by entries as it counts them; the gateway's own caches are bounded in bytes.
    cache: new InMemoryLRUCache({ max: 1_000_000 }),
    responseCaching: {
      // Each caller's answers apart (they may hold private data, the entitlements), anonymous callers
      // sharing theirs. Lifetimes as the gateway's: the plugin keeps a response for the least max-age
      // its upstream answers carried (plans 300 s, movies 60 s, search 30 s, entitlements 10 s).
      session: (request) => request.headers.get('authorization'),
    },
  }),
  jwt: {
    signingKeyProviders: [createInlineSigningKeyProvider(process.env.JWT_SECRET_KEY)],
    tokenLookupLocations: [extractFromHeader({ name: 'authorization', prefix: 'Bearer' })],
    reject: { missingToken: false, invalidToken: true },
  },
  propagateHeaders: {
    fromClientToSubgraphs({ context }) {
      const payload = context.jwt?.payload;
      if (!payload?.sub) return {};
      return { 'x-user-id': String(payload.sub), 'x-user-roles': Array.isArray(payload.roles) ? payload.roles.join(',') : '' };
    },
  },
  additionalTypeDefs: /* GraphQL */ `
    extend type OnDemand_Movie { entitlement: RightsManagement_Entitlement }
    extend type GlobalSearch_SearchHit { movie: OnDemand_Movie channel: LiveTv_Channel }
  `,
  additionalResolvers: {
    OnDemand_Movie: {
      entitlement: { selectionSet: '{ id }', resolve: (movie, _args, context, info) => loaderOf('entitlement', context, info).load(`movie:${movie.id}`) },
    },
    GlobalSearch_SearchHit: {
      movie: { selectionSet: '{ kind id }', resolve: (hit, _args, context, info) => (hit.kind === 'movie' ? loaderOf('movie', context, info).load(hit.id) : null) },
      channel: { selectionSet: '{ kind id }', resolve: (hit, _args, context, info) => (hit.kind === 'channel' ? loaderOf('channel', context, info).load(hit.id) : null) },
    },
  },
});

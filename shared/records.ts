import type { components as Auth } from './api/auth.js';
import type { components as LiveTv } from './api/livetv.js';
import type { components as OnDemand } from './api/ondemand.js';
import type { components as Rights } from './api/rights.js';
import type { components as Search } from './api/search.js';
import type { components as Users } from './api/users.js';

/**
 * The records the services exchange, as their specs define them (generated: shared/api/): the
 * reference services build them and the gateway's GraphQL resolvers (gateway/src/graphql/contract/) read them.
 */
export type Movie = OnDemand['schemas']['Movie'];
export type MovieList = OnDemand['schemas']['MovieList'];
export type Channel = LiveTv['schemas']['Channel'];
export type Program = LiveTv['schemas']['Program'];
export type Playback = OnDemand['schemas']['Playback'];
export type Plan = Rights['schemas']['Plan'];
export type Entitlement = Rights['schemas']['Entitlement'];
export type SubscriptionRecord = Rights['schemas']['SubscriptionRecord'];
export type UserSubscription = Rights['schemas']['UserSubscription'];
export type Grant = Rights['schemas']['Grant'];
export type SearchHit = Search['schemas']['SearchHit'];
export type User = Users['schemas']['User'];
export type Token = Auth['schemas']['Token'];
export type Jwks = Auth['schemas']['JWKS'];

/** The batch endpoints' answers, which the gateway's DataLoaders read. */
export type MovieBatch = OnDemand['schemas']['MovieBatch'];
export type ChannelBatch = LiveTv['schemas']['ChannelBatch'];
export type NowPlayingBatch = LiveTv['schemas']['NowPlayingBatch'];
export type ScheduleBatch = LiveTv['schemas']['ScheduleBatch'];
export type EntitlementBatch = Rights['schemas']['EntitlementBatch'];
export type SubscriptionBatch = Rights['schemas']['SubscriptionBatch'];

import { createRequire } from 'node:module';
import util from 'node:util';
import { MapperKind, mapSchema } from '@graphql-tools/utils';
import type { GraphQLObjectType, GraphQLSchema } from 'graphql';
import type * as Middleware from 'graphql-middleware';
import type * as Shield from 'graphql-shield';
import type { IRules } from 'graphql-shield';
import { GatewayError } from '../errors.js';
import type { GatewayContext } from './contract/context.js';
import { ROLES } from '../../../shared/upstreams.js';

/**
 * graphql-shield 7.6.5, its latest release, imports `isUndefined` from `util`, which Node removed in
 * version 23: its ES module build does not even load on the image's Node 24. Its CommonJS build looks
 * the function up only when it calls it, so it is loaded that way, with the function put back; and
 * graphql-middleware from CommonJS too, the build graphql-shield hands its middleware to (they check
 * each other's classes with instanceof).
 */
const legacyUtil = util as typeof util & { isUndefined?: (value: unknown) => boolean };
legacyUtil.isUndefined ??= (value) => value === undefined;
const requireCommonJs = createRequire(import.meta.url);
const { allow, deny, rule, shield } = requireCommonJs('graphql-shield') as typeof Shield;
const { applyMiddleware } = requireCommonJs('graphql-middleware') as typeof Middleware;

const unauthenticated = () => new GatewayError('UNAUTHENTICATED', 'Authentication required');
const forbidden = (detail: string) => new GatewayError('FORBIDDEN', detail);

// Rules are cached per request ("contextual"): a list of 50 entitlements checks the token once.
const isAuthenticated = rule({ cache: 'contextual' })((_parent, _args, context: GatewayContext) => (context.user ? true : unauthenticated()));

const isAdmin = rule({ cache: 'contextual' })((_parent, _args, context: GatewayContext) => {
  if (!context.user) return unauthenticated();
  return context.user.roles.includes(ROLES.admin) ? true : forbidden('Admin access required');
});

/**
 * The contract's permissions, deny by default: every type and field is listed on purpose, and
 * anything not listed (a field added later, say) is refused until someone decides who may read it.
 * A denied field is refused before its resolver runs, so it makes no upstream call.
 */
const RULES: IRules = {
  Query: {
    movies: allow,
    movie: allow,
    channels: allow,
    channel: allow,
    plans: allow,
    search: allow,
    me: isAuthenticated,
    playMovie: isAuthenticated,
    playChannel: isAuthenticated,
    adminUsers: isAdmin,
  },
  Mutation: {
    login: allow,
    register: allow,
    subscribe: isAuthenticated,
    adminCreateMovie: isAdmin,
    adminUpdateMovie: isAdmin,
    adminDeleteMovie: isAdmin,
    adminSetUserRoles: isAdmin,
    adminCreateChannel: isAdmin,
    adminUpdateChannel: isAdmin,
    adminDeleteChannel: isAdmin,
  },
  Subscription: { nowPlaying: allow, channelUpdated: allow },
  NowPlaying: allow,
  Movie: { id: allow, title: allow, year: allow, genres: allow, durationMinutes: allow, free: allow, entitlement: isAuthenticated },
  Channel: { id: allow, name: allow, number: allow, free: allow, nowPlaying: allow, schedule: allow, entitlement: isAuthenticated },
  MovieList: allow,
  Program: allow,
  Entitlement: allow,
  User: allow,
  UserSubscription: allow,
  Plan: allow,
  SearchResults: allow,
  SearchHit: allow,
  Playback: allow,
  Token: allow,
};

export const permissions = shield(RULES, {
  fallbackRule: deny,
  fallbackError: () => forbidden('Not allowed'),
  // Resolver errors (an upstream's 404, say) pass through to the error formatter unchanged.
  allowExternalErrors: true,
});

/** A field listed as open to anyone, by its own rule or its type's. */
function isOpen(typeName: string, fieldName: string): boolean {
  const entry = (RULES as Readonly<Record<string, unknown>>)[typeName];
  return entry === allow || (typeof entry === 'object' && (entry as Record<string, unknown>)[fieldName] === allow);
}

/**
 * The schema behind graphql-shield, its rules decided once per field: a field open to anyone keeps its
 * own resolver (shield would make every one of them, each item's id and title included, a promise to
 * await), every other field, listed or not, goes through shield.
 */
export function protect(schema: GraphQLSchema): GraphQLSchema {
  const shielded = applyMiddleware(schema, permissions);
  return mapSchema(shielded, {
    [MapperKind.OBJECT_FIELD]: (field, fieldName, typeName) => {
      if (!isOpen(typeName, fieldName)) return field;
      const { resolve } = (schema.getType(typeName) as GraphQLObjectType).getFields()[fieldName] ?? {};
      return { ...field, resolve };
    },
  });
}

import { allow, deny, rule, shield } from 'graphql-shield';
import { GatewayError } from '../errors.js';
import type { GatewayContext } from '../../../mesh/context.js';

const unauthenticated = () => new GatewayError('UNAUTHENTICATED', 'Authentication required');
const forbidden = (detail: string) => new GatewayError('FORBIDDEN', detail);

// Rules are cached per request ("contextual"): a list of 50 entitlements checks the token once.
const isAuthenticated = rule({ cache: 'contextual' })((_parent, _args, context: GatewayContext) => (context.user ? true : unauthenticated()));

const isAdmin = rule({ cache: 'contextual' })((_parent, _args, context: GatewayContext) => {
  if (!context.user) return unauthenticated();
  return context.user.roles.includes('admin') ? true : forbidden('Admin access required');
});

/**
 * The contract's permissions, deny by default: every type and field is listed on purpose, and
 * anything not listed (a field added later, say) is refused until someone decides who may read it.
 * A denied field is refused before its resolver runs, so it makes no upstream call.
 */
export const permissions = shield(
  {
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
    },
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
  },
  {
    fallbackRule: deny,
    fallbackError: () => forbidden('Not allowed'),
    // Resolver errors (an upstream's 404, say) pass through to the error formatter unchanged.
    allowExternalErrors: true,
  },
);

/**
 * What each operation's answer says about caching (RFC 9111), honestly: the catalogue is the same for
 * everyone and changes rarely (`public`), what the schedule says now changes within minutes, what
 * concerns one user is `private` (a shared cache never stores it), and anything about credentials or
 * changes is never stored. Errors are never stored either.
 */
const POLICIES: Readonly<Record<string, string>> = {
  movies: 'public, max-age=60',
  moviesByIds: 'public, max-age=60',
  movie: 'public, max-age=60',
  channels: 'public, max-age=60',
  channelsByIds: 'public, max-age=60',
  channel: 'public, max-age=60',
  channelSchedule: 'public, max-age=30',
  schedulesByChannelIds: 'public, max-age=30',
  nowPlaying: 'public, max-age=15',
  plans: 'public, max-age=300',
  search: 'public, max-age=30',
  jwks: 'public, max-age=60',
  me: 'private, max-age=10',
  mySubscription: 'private, max-age=10',
  entitlements: 'private, max-age=10',
  usersByIds: 'private, max-age=10',
  subscriptionsByUserIds: 'private, max-age=10',
};

/** The Cache-Control of an answer of `operationId` with `status`. */
export function cacheControlFor(operationId: string | undefined, status: number): string {
  if (status >= 300 || operationId === undefined) return 'no-store';
  return POLICIES[operationId] ?? 'no-store';
}

/**
 * A TV app's calls, typed end to end: `npm start`, then `node --import tsx examples/tv-app/main.ts`
 * (the gateway on GATEWAY_URL, else HOST and PORT as the gateway reads them). Programmes last 30 to 120
 * minutes; `LIVETV_SLOT_SECONDS=5 npm start` changes them every 5 s, to see the live guide follow.
 */
import { createTvClient, createTvSubscriptions, gatewayUrl } from './client.js';
import { HomeScreen, LiveGuide, Login, OnAir, PlayMovie } from './operations.js';

/** How long the live guide is followed before the example ends. */
const FOLLOW_MS = 15_000;

const baseUrl = gatewayUrl();
const session: { token?: string } = {};
const request = createTvClient(baseUrl, () => session.token);
const subscribe = createTvSubscriptions(baseUrl, () => session.token);

session.token = (await request(Login, { username: 'alice', password: 'alice-password' })).login.access_token;
const home = await request(HomeScreen, { limit: 5 });
// Root fields are nullable: a failing service blanks its own row, not the whole screen.
const movies = home.movies?.items ?? [];
for (const movie of movies) {
  console.log(`${movie.title} (${movie.year ?? '?'}) ${movie.entitlement.canPlay ? '▶' : '🔒'} ${movie.entitlement.reason ?? ''}`);
}
const channels = (await request(LiveGuide)).channels ?? [];
console.log(`${channels.length} channels; on ${channels[0]?.name}: ${channels[0]?.nowPlaying?.title ?? 'nothing'}`);
const { playMovie } = await request(PlayMovie, { id: movies[1]?.id ?? 'm2' });
console.log(playMovie ? `play until ${playMovie.expiresAt}: ${playMovie.url}` : 'not playable now');

// The guide kept current: each channel's programme now, then each new one as it starts.
const followed = channels.slice(0, 3).map((channel) => channel.id);
for await (const { nowPlaying } of subscribe(OnAir, { channelIds: followed }, AbortSignal.timeout(FOLLOW_MS))) {
  const { channel, program } = nowPlaying;
  console.log(`${channel.number} ${channel.name}: ${program ? `${program.title} until ${program.end}` : 'nothing on'}`);
}

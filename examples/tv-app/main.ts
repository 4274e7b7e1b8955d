/**
 * A TV app's calls, typed end to end: `npm start`, then `node --import tsx examples/tv-app/main.ts`
 * (the gateway on GATEWAY_URL, else HOST and PORT as the gateway reads them).
 */
import { createTvClient, gatewayUrl } from './client.js';
import { HomeScreen, LiveGuide, Login, PlayMovie } from './operations.js';

const baseUrl = gatewayUrl();
const session: { token?: string } = {};
const request = createTvClient(baseUrl, () => session.token);

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

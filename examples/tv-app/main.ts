/**
 * A TV app's calls, typed end to end: `npm start`, then `node --import tsx examples/tv-app/main.ts`.
 */
import { createTvClient } from './client.js';
import { HomeScreen, LiveGuide, Login, PlayMovie } from './operations.js';

const baseUrl = process.env.GATEWAY_URL ?? 'http://127.0.0.1:4000';
const session: { token?: string } = {};
const request = createTvClient(baseUrl, () => session.token);

session.token = (await request(Login, { username: 'alice', password: 'alice-password' })).login.access_token;
const home = await request(HomeScreen, { limit: 5 });
for (const movie of home.movies.items) {
  console.log(`${movie.title} (${movie.year ?? '?'}) ${movie.entitlement.canPlay ? '▶' : '🔒'} ${movie.entitlement.reason ?? ''}`);
}
const guide = await request(LiveGuide);
console.log(`${guide.channels.length} channels; on ${guide.channels[0]?.name}: ${guide.channels[0]?.nowPlaying?.title ?? 'nothing'}`);
const playback = await request(PlayMovie, { id: home.movies.items[1]?.id ?? 'm2' });
console.log(`play until ${playback.playMovie.expiresAt}: ${playback.playMovie.url}`);

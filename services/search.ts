import type { operations } from '../shared/api/search.js';
import type { Channel, Movie, MovieList, SearchHit } from '../shared/records.js';
import { callService } from './lib/client.js';
import type { ServiceEnvironment } from './lib/environment.js';
import { defaulted, defineService } from './lib/service.js';

const PAGE_SIZE = 100;

async function allMovies(env: ServiceEnvironment): Promise<Movie[]> {
  const movies: Movie[] = [];
  for (let offset = 0; ; offset += PAGE_SIZE) {
    const page = await callService<MovieList>(env, 'ondemand', `/ondemand/movies?limit=${PAGE_SIZE}&offset=${offset}`);
    movies.push(...page.items);
    if (page.items.length === 0 || movies.length >= page.total) return movies;
  }
}

const allChannels = (env: ServiceEnvironment): Promise<Channel[]> => callService<Channel[]>(env, 'livetv', '/livetv/channels');

export const searchService = defineService<operations>()({
  name: 'search',
  state: () => undefined,
  handlers: {
    async search({ query }, { env }) {
      const needle = query.q.toLowerCase();
      const limit = defaulted(query.limit);
      const [movies, channels] = await Promise.all([allMovies(env), allChannels(env)]);
      const hits: SearchHit[] = [
        ...movies.map((movie): SearchHit => ({ kind: 'movie', id: movie.id, title: movie.title })),
        ...channels.map((channel): SearchHit => ({ kind: 'channel', id: channel.id, title: channel.name })),
      ].filter((hit) => hit.title.toLowerCase().includes(needle));
      const rank = (hit: SearchHit) => (hit.title.toLowerCase().startsWith(needle) ? 0 : 1);
      hits.sort((a, b) => rank(a) - rank(b) || a.title.localeCompare(b.title) || a.id.localeCompare(b.id));
      return { body: { items: hits.slice(0, limit), total: hits.length } };
    },
  },
});

import { callService } from './lib/client.js';
import { HttpError } from './lib/errors.js';
import type { ServiceEnvironment } from './lib/environment.js';
import type { ServiceDefinition } from './lib/service.js';
import type { Channel, Movie } from './data/catalog.js';
import { specPath } from '../gateway/src/upstreams.js';

interface SearchHit {
  kind: 'movie' | 'channel';
  id: string;
  title: string;
}

const PAGE_SIZE = 100;

export function searchService(env: ServiceEnvironment): ServiceDefinition {
  async function allMovies(): Promise<Movie[]> {
    const movies: Movie[] = [];
    for (let offset = 0; ; offset += PAGE_SIZE) {
      const answer = await callService<{ items: Movie[]; total: number }>('on-demand', env.urls.ondemand, `/ondemand/movies?limit=${PAGE_SIZE}&offset=${offset}`);
      if (answer.status !== 200) throw new HttpError(503, 'The on-demand service is unavailable');
      movies.push(...answer.body.items);
      if (answer.body.items.length === 0 || movies.length >= answer.body.total) return movies;
    }
  }

  async function allChannels(): Promise<Channel[]> {
    const answer = await callService<Channel[]>('live TV', env.urls.livetv, '/livetv/channels');
    if (answer.status !== 200) throw new HttpError(503, 'The live TV service is unavailable');
    return answer.body;
  }

  return {
    name: 'search',
    spec: specPath('search'),
    handlers: {
      async search({ query }) {
        const needle = (query.q as string).toLowerCase();
        const limit = query.limit as number;
        const [movies, channels] = await Promise.all([allMovies(), allChannels()]);
        const hits: SearchHit[] = [
          ...movies.map((movie): SearchHit => ({ kind: 'movie', id: movie.id, title: movie.title })),
          ...channels.map((channel): SearchHit => ({ kind: 'channel', id: channel.id, title: channel.name })),
        ].filter((hit) => hit.title.toLowerCase().includes(needle));
        const rank = (hit: SearchHit) => (hit.title.toLowerCase().startsWith(needle) ? 0 : 1);
        hits.sort((a, b) => rank(a) - rank(b) || a.title.localeCompare(b.title) || a.id.localeCompare(b.id));
        return { body: { items: hits.slice(0, limit), total: hits.length } };
      },

      searchHealth: () => ({ body: { status: 'ok', service: 'search' } }),
    },
  };
}

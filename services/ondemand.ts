import type { operations } from '../shared/api/ondemand.js';
import type { Movie } from '../shared/records.js';
import { demoMovies } from './data/catalog.js';
import { Catalogue } from './lib/catalogue.js';
import { playbackFor } from './lib/playback.js';
import { defaulted, defineService } from './lib/service.js';

export const ondemandService = defineService<operations>()({
  name: 'ondemand',
  state: () => ({ movies: new Catalogue<Movie>(demoMovies(), 'm', 'Movie') }),
  handlers: {
    movies({ query }, { state }) {
      const limit = defaulted(query.limit);
      const offset = defaulted(query.offset);
      const genre = query.genre?.toLowerCase();
      const matching = state.movies.values().filter((movie) => genre === undefined || movie.genres.includes(genre));
      return { body: { items: matching.slice(offset, offset + limit), total: matching.length } };
    },
    moviesByIds: ({ query }, { state }) => ({ body: { items: state.movies.many(query.ids) } }),
    movie: ({ params }, { state }) => ({ body: state.movies.get(params.id) }),
    playMovie: async ({ headers, params }, { state, env }) => ({ body: await playbackFor(env, headers, 'movie', () => state.movies.get(params.id)) }),
    adminCreateMovie: ({ body }, { state }) => ({ status: 201, body: state.movies.add(body) }),
    adminUpdateMovie: ({ params, body }, { state }) => ({ body: state.movies.replace(params.id, body) }),
    adminDeleteMovie({ params }, { state }) {
      state.movies.remove(params.id);
      return { status: 204 };
    },
  },
});

import type { operations } from '../shared/api/ondemand.js';
import type { Movie } from '../shared/records.js';
import { contentId } from '../shared/upstreams.js';
import { demoMovies, MOVIE_COUNT } from './data/catalog.js';
import { requireEntitlement } from './lib/entitlement.js';
import { foundOr404 } from './lib/errors.js';
import { requireAdmin, requireCaller, rolesFromUserStore } from './lib/identity.js';
import { signedPlaybackUrl } from './lib/playback.js';
import { defaulted, defineService } from './lib/service.js';

interface OnDemandState {
  readonly movies: Map<string, Movie>;
  nextMovieNumber: number;
}

export const ondemandService = defineService<operations>()({
  name: 'ondemand',
  state: (): OnDemandState => ({ movies: new Map(demoMovies().map((movie) => [movie.id, movie])), nextMovieNumber: MOVIE_COUNT + 1 }),
  handlers: {
    movies({ query }, { state }) {
      const limit = defaulted(query.limit);
      const offset = defaulted(query.offset);
      const genre = query.genre?.toLowerCase();
      const matching = [...state.movies.values()].filter((movie) => genre === undefined || movie.genres.includes(genre));
      return { body: { items: matching.slice(offset, offset + limit), total: matching.length } };
    },

    moviesByIds: ({ query }, { state }) => ({ body: { items: [...new Set(query.ids)].flatMap((id) => state.movies.get(id) ?? []) } }),

    movie: ({ params }, { state }) => ({ body: foundOr404(state.movies, params.id, 'Movie') }),

    async playMovie({ headers, params }, { state, env }) {
      const caller = requireCaller(headers);
      const movie = foundOr404(state.movies, params.id, 'Movie');
      await requireEntitlement(env, headers, contentId('movie', movie.id), 'movie');
      return { body: signedPlaybackUrl(`vod/${movie.id}`, caller.id, env.playbackSigningKey) };
    },

    async adminCreateMovie({ headers, body }, { state, env }) {
      await requireAdmin(headers, rolesFromUserStore(env));
      const movie: Movie = { id: `m${state.nextMovieNumber++}`, ...body };
      state.movies.set(movie.id, movie);
      return { status: 201, body: movie };
    },

    async adminUpdateMovie({ headers, params, body }, { state, env }) {
      await requireAdmin(headers, rolesFromUserStore(env));
      const { id } = foundOr404(state.movies, params.id, 'Movie');
      const movie: Movie = { id, ...body };
      state.movies.set(id, movie);
      return { body: movie };
    },

    async adminDeleteMovie({ headers, params }, { state, env }) {
      await requireAdmin(headers, rolesFromUserStore(env));
      state.movies.delete(foundOr404(state.movies, params.id, 'Movie').id);
      return { status: 204 };
    },
  },
});

import { HttpError } from './lib/errors.js';
import type { ServiceEnvironment } from './lib/environment.js';
import { requireEntitlement } from './lib/entitlement.js';
import { requireAdmin, requireCaller, rolesFromUserStore } from './lib/identity.js';
import { signedPlaybackUrl } from './lib/playback.js';
import type { ServiceDefinition } from './lib/service.js';
import { demoMovies, MOVIE_COUNT, type Movie } from './data/catalog.js';
import { specPath } from '../gateway/src/upstreams.js';

type MovieInput = Omit<Movie, 'id'>;

export function ondemandService(env: ServiceEnvironment): ServiceDefinition {
  const currentRoles = rolesFromUserStore(env);
  const movies = new Map<string, Movie>(demoMovies().map((movie) => [movie.id, movie]));
  let nextMovieNumber = MOVIE_COUNT + 1;

  function movieOrNotFound(id: string): Movie {
    const movie = movies.get(id);
    if (!movie) throw new HttpError(404, 'Movie not found');
    return movie;
  }

  return {
    name: 'ondemand',
    spec: specPath('ondemand'),
    handlers: {
      movies({ query }) {
        const limit = query.limit as number;
        const offset = query.offset as number;
        const genre = (query.genre as string | undefined)?.toLowerCase();
        const matching = [...movies.values()].filter((movie) => genre === undefined || movie.genres.includes(genre));
        return { body: { items: matching.slice(offset, offset + limit), total: matching.length } };
      },

      moviesByIds({ query }) {
        const ids = [...new Set(query.ids as string[])];
        return { body: { items: ids.flatMap((id) => movies.get(id) ?? []) } };
      },

      movie: ({ params }) => ({ body: movieOrNotFound(params.id as string) }),

      async playMovie({ headers, params }) {
        const caller = requireCaller(headers);
        const movie = movieOrNotFound(params.id as string);
        await requireEntitlement(env, headers, `movie:${movie.id}`, 'movie');
        return { body: signedPlaybackUrl(`vod/${movie.id}`, caller.id, env.playbackSigningKey) };
      },

      async adminCreateMovie({ headers, body }) {
        await requireAdmin(headers, currentRoles);
        const movie: Movie = { id: `m${nextMovieNumber++}`, ...(body as MovieInput) };
        movies.set(movie.id, movie);
        return { status: 201, body: movie };
      },

      async adminUpdateMovie({ headers, params, body }) {
        await requireAdmin(headers, currentRoles);
        const { id } = movieOrNotFound(params.id as string);
        const movie: Movie = { id, ...(body as MovieInput) };
        movies.set(id, movie);
        return { body: movie };
      },

      async adminDeleteMovie({ headers, params }) {
        await requireAdmin(headers, currentRoles);
        movies.delete(movieOrNotFound(params.id as string).id);
        return { status: 204 };
      },

      ondemandHealth: () => ({ body: { status: 'ok', service: 'ondemand' } }),
    },
  };
}

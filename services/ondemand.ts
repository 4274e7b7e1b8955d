import type { operations } from '../shared/api/ondemand.js';
import type { Movie } from '../shared/records.js';
import { demoMovies } from './data/catalog.js';
import { Cached, READ_AGAIN_MS } from './lib/cached.js';
import type { Queryable } from './lib/database.js';
import { sql } from './lib/sql.js';
import { found } from './lib/errors.js';
import { playbackFor } from './lib/playback.js';
import { defaulted, defineService } from './lib/service.js';

const MOVIE = sql`id, title, year, genres, duration_minutes as "durationMinutes", free`;

/** A movie as stored: the details it was not given are null. */
interface MovieRow extends Omit<Movie, 'year' | 'durationMinutes'> {
  readonly year: number | null;
  readonly durationMinutes: number | null;
}

/** A row as the spec's Movie: the details a movie was not given are left out, as they came. */
function movieOf({ id, title, year, genres, durationMinutes, free }: MovieRow): Movie {
  return { id, title, ...(year === null ? {} : { year }), genres, ...(durationMinutes === null ? {} : { durationMinutes }), free };
}

/** Adds a movie: its id comes from the order it was added in (m1, m2, …). */
const insertMovie = (db: Queryable, { title, year, genres, durationMinutes, free }: Omit<Movie, 'id'>) =>
  db.one<MovieRow>(sql`insert into ondemand.movies (title, year, genres, duration_minutes, free) values (${title}, ${year ?? null}, ${genres}, ${durationMinutes ?? null}, ${free}) returning ${MOVIE}`);

/** The whole catalogue, in the order the movies were added: small, read on every page, changed by admins now and then. */
interface Catalogue {
  readonly movies: readonly Movie[];
  readonly byId: ReadonlyMap<string, Movie>;
}

async function readCatalogue(db: Queryable): Promise<Catalogue> {
  const movies = (await db.rows<MovieRow>(sql`select ${MOVIE} from ondemand.movies order by seq`)).map(movieOf);
  return { movies, byId: new Map(movies.map((movie) => [movie.id, movie])) };
}

const movie = async (catalogue: Cached<Catalogue>, id: string): Promise<Movie> => found((await catalogue.get()).byId.get(id), 'Movie');

export const ondemandService = defineService<operations>()({
  name: 'ondemand',
  database: {
    // In the catalogue's order: m1, m2, … as the identity numbers them.
    async seed(tx) {
      for (const { id: _id, ...input } of demoMovies()) await insertMovie(tx, input);
    },
  },
  state: (_env, db) => ({ db, catalogue: new Cached(() => readCatalogue(db), READ_AGAIN_MS) }),
  handlers: {
    async movies({ query }, { state: { catalogue } }) {
      const limit = defaulted(query.limit);
      const offset = defaulted(query.offset);
      const genre = query.genre?.toLowerCase();
      const matching = (await catalogue.get()).movies.filter((candidate) => genre === undefined || candidate.genres.includes(genre));
      return { body: { items: matching.slice(offset, offset + limit), total: matching.length } };
    },
    async moviesByIds({ query }, { state: { catalogue } }) {
      const { byId } = await catalogue.get();
      return { body: { items: [...new Set(query.ids)].flatMap((id) => byId.get(id) ?? []) } };
    },
    movie: async ({ params }, { state: { catalogue } }) => ({ body: await movie(catalogue, params.id) }),
    playMovie: async ({ headers, params }, { state: { catalogue }, env }) => ({ body: await playbackFor(env, headers, 'movie', () => movie(catalogue, params.id)) }),
    async adminCreateMovie({ body }, { state: { db, catalogue } }) {
      const created = movieOf(await insertMovie(db, body));
      catalogue.invalidate();
      return { status: 201, body: created };
    },
    async adminUpdateMovie({ params, body: { title, year, genres, durationMinutes, free } }, { state: { db, catalogue } }) {
      // A replacement: what the new details leave out is cleared.
      const updated = await db.row<MovieRow>(
        sql`update ondemand.movies set title = ${title}, year = ${year ?? null}, genres = ${genres}, duration_minutes = ${durationMinutes ?? null}, free = ${free} where id = ${params.id} returning ${MOVIE}`,
      );
      catalogue.invalidate();
      return { body: movieOf(found(updated, 'Movie')) };
    },
    async adminDeleteMovie({ params }, { state: { db, catalogue } }) {
      const deleted = await db.row(sql`delete from ondemand.movies where id = ${params.id} returning id`);
      catalogue.invalidate();
      found(deleted, 'Movie');
      return { status: 204 };
    },
  },
});

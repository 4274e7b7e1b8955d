/** The services' `sql` tag (services/lib/sql.ts): values are parameters, never text. */
import { describe, expect, it } from 'vitest';
import { identifier, sql } from '../../services/lib/sql.js';

describe('the sql tag', () => {
  it('sends every value as a parameter, numbered in order, whatever it holds', () => {
    const name = "x'); drop table users.profiles; --";
    expect(sql`select id from users.profiles where username = ${name} and id = any(${['1', '2']}) limit ${5}`.render()).toEqual({
      text: 'select id from users.profiles where username = $1 and id = any($2) limit $3',
      values: [name, ['1', '2'], 5],
    });
  });

  it('splices nested statements in, their parameters numbered on, and an empty one as nothing', () => {
    const genre = 'drama';
    const where = sql`where genres @> array[${genre}]::text[]`;
    expect(sql`select ${sql`id, title`} from ondemand.movies ${where} limit ${20} offset ${sql``}${0}`.render()).toEqual({
      text: 'select id, title from ondemand.movies where genres @> array[$1]::text[] limit $2 offset $3',
      values: ['drama', 20, 0],
    });
  });

  it('quotes an identifier, and only that is spliced as text', () => {
    expect(sql`create schema if not exists ${identifier('users')}`.render()).toEqual({ text: 'create schema if not exists "users"', values: [] });
    expect(identifier('we"ird').render().text).toBe('"we""ird"');
  });
});

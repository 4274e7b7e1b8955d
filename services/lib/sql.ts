import pg from 'pg';

/**
 * A statement made with the `sql` tag: what it interpolates is sent as parameters ($1, $2…), never as
 * text, but for statements nested in it (spliced in, their parameters numbered on) and identifiers.
 */
export class Sql {
  constructor(
    private readonly strings: readonly string[],
    private readonly values: readonly unknown[],
  ) {}

  /** Its text and parameters, as node-postgres sends them. */
  render(): { text: string; values: unknown[] } {
    const values: unknown[] = [];
    const text = (statement: Sql): string => {
      let rendered = statement.strings[0] ?? '';
      statement.values.forEach((value, index) => {
        rendered += (value instanceof Sql ? text(value) : `$${values.push(value)}`) + (statement.strings[index + 1] ?? '');
      });
      return rendered;
    };
    return { text: text(this), values };
  }
}

export const sql = (strings: TemplateStringsArray, ...values: unknown[]): Sql => new Sql(strings, values);

/** A name (a schema's) quoted as an identifier, to splice into a statement. */
export const identifier = (name: string): Sql => new Sql([pg.escapeIdentifier(name)], []);

import { CriticalityLevel, diff } from '@graphql-inspector/core';
import { buildSchema, type GraphQLSchema } from 'graphql';

export interface SchemaChange {
  /** The schema coordinate changed, such as `Movie.year` or `Query.movies.limit`. */
  readonly path: string;
  readonly message: string;
}

/** What changed between the committed schema.graphql and the served schema, as a client sees it. */
export interface SchemaReview {
  /** Changes that can break a client already shipped (a removed field, a new required argument…). */
  readonly breaking: readonly SchemaChange[];
  /** The breaking changes CHANGELOG.md's "Unreleased" section does not name: these stop `npm test` and `npm run schema`. */
  readonly unannounced: readonly SchemaChange[];
  /** Everything else (added fields and types, descriptions…). */
  readonly safe: readonly SchemaChange[];
}

/** The text of CHANGELOG.md's `## Unreleased` section (up to the next `## ` heading). */
export function unreleasedNotes(changelog: string): string {
  const start = /^## Unreleased\b.*$/m.exec(changelog);
  if (!start) return '';
  const rest = changelog.slice(start.index + start[0].length);
  const next = /^## /m.exec(rest);
  return next ? rest.slice(0, next.index) : rest;
}

/**
 * Reviews a schema change with GraphQL Inspector: a breaking change must be announced, by its schema
 * coordinate in backticks (`Movie.year`), in CHANGELOG.md's Unreleased section before it lands.
 */
export async function reviewSchemaChange(committedSdl: string, served: GraphQLSchema, changelog: string): Promise<SchemaReview> {
  const changes = await diff(buildSchema(committedSdl), served);
  const notes = unreleasedNotes(changelog);
  const toChange = (change: (typeof changes)[number]): SchemaChange => ({ path: change.path ?? '', message: change.message });
  const breaking = changes.filter((change) => change.criticality.level === CriticalityLevel.Breaking).map(toChange);
  return {
    breaking,
    unannounced: breaking.filter((change) => change.path === '' || !notes.includes(`\`${change.path}\``)),
    safe: changes.filter((change) => change.criticality.level !== CriticalityLevel.Breaking).map(toChange),
  };
}

/** graphql-shield's complaint that a rule names a type or field the schema no longer has, worded for a person. */
export function explainPermissionsMismatch(error: unknown): string | undefined {
  const message = error instanceof Error ? error.message : '';
  if (!/Shield cannot find/i.test(message)) return undefined;
  return [
    'npm run schema: the permissions in gateway/src/graphql/permissions.ts name something the schema no longer has.',
    `graphql-shield says: ${message}`,
    'Remove or rename those rules to match gateway/src/graphql/contract/schema.graphql (anything not listed is denied by default), then run npm run schema again.',
  ].join('\n');
}

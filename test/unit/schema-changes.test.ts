import { readFileSync } from 'node:fs';
import { buildSchema } from 'graphql';
import { describe, expect, it } from 'vitest';
import { protect } from '../../gateway/src/graphql/permissions.js';
import { explainPermissionsMismatch, reviewSchemaChange, unreleasedNotes } from '../../scripts/lib/schema-changes.js';

const COMMITTED = readFileSync(new URL('../../schema.graphql', import.meta.url), 'utf8');
/** The committed schema with Movie.year removed, as a served schema would be after that edit. */
const WITHOUT_YEAR = COMMITTED.replace(/(type Movie \{[^}]*?)\n\s+year: Int\n/s, '$1\n');
const changelog = (unreleased: string) => `# Changelog\n\n## Unreleased\n\n${unreleased}\n\n## 0.1.0\n\n- \`Movie.rating\` removed long ago\n`;

describe('schema change control (GraphQL Inspector)', () => {
  it('catches a removed field as breaking, and stops it until CHANGELOG.md announces it', async () => {
    expect(WITHOUT_YEAR).not.toBe(COMMITTED);
    const unannounced = await reviewSchemaChange(COMMITTED, buildSchema(WITHOUT_YEAR), changelog('- Added `Query.plans`.'));
    expect(unannounced.breaking.map((change) => change.path)).toEqual(['Movie.year']);
    expect(unannounced.unannounced).toEqual([{ path: 'Movie.year', message: "Field 'year' was removed from object type 'Movie'" }]);
    const announced = await reviewSchemaChange(COMMITTED, buildSchema(WITHOUT_YEAR), changelog('- **Breaking**: `Movie.year` removed: use `Movie.releaseDate`.'));
    expect(announced.unannounced).toEqual([]);
    expect(announced.breaking).toHaveLength(1);
  });

  it('does not count a mention under a released version, nor a bare word', async () => {
    const schema = buildSchema(COMMITTED.replace(/(type Movie \{[^}]*?)\n\s+free: Boolean!\n/s, '$1\n'));
    expect((await reviewSchemaChange(COMMITTED, schema, changelog('Movie.free is gone'))).unannounced.map((change) => change.path)).toEqual(['Movie.free']);
    expect(unreleasedNotes(changelog('x'))).not.toContain('Movie.rating');
  });

  it('lets an added field through as safe', async () => {
    const added = await reviewSchemaChange(COMMITTED, buildSchema(COMMITTED.replace('type Movie {', 'type Movie {\n  "Its rating."\n  rating: Float')), changelog(''));
    expect(added.breaking).toEqual([]);
    expect(added.safe.map((change) => change.path)).toContain('Movie.rating');
  });

  it('finds the committed schema.graphql announced as it stands', async () => {
    const review = await reviewSchemaChange(COMMITTED, buildSchema(COMMITTED), readFileSync(new URL('../../CHANGELOG.md', import.meta.url), 'utf8'));
    expect(review).toEqual({ breaking: [], unannounced: [], safe: [] });
  });

  it('explains a permission rule that names a field the schema lost, instead of a stack trace', () => {
    let failure: unknown;
    try {
      protect(buildSchema(WITHOUT_YEAR));
    } catch (error) {
      failure = error;
    }
    const explained = explainPermissionsMismatch(failure);
    expect(explained).toMatch(/^npm run schema: the permissions in gateway\/src\/graphql\/permissions\.ts name something the schema no longer has\./);
    expect(explained).toContain('Movie.year');
    expect(explainPermissionsMismatch(new Error('something else'))).toBeUndefined();
  });
});

import { readdirSync, readFileSync } from 'node:fs';
import type { GraphQLObjectType} from 'graphql';
import { buildSchema, execute, parse, type GraphQLFieldResolver, type GraphQLSchema } from 'graphql';
import { describe, expect, it } from 'vitest';
import { protect } from '../../gateway/src/graphql/permissions.js';

/** The served schema (as committed), a field nobody listed added, and resolvers that count their calls. */
function fixture() {
  const schema = buildSchema(`${readFileSync(new URL('../../schema.graphql', import.meta.url), 'utf8')}\nextend type Query { secret: String }`);
  const calls: string[] = [];
  const resolvers: Record<string, Record<string, GraphQLFieldResolver<unknown, unknown>>> = {
    Query: {
      plans: () => [{ id: 'basic', name: 'Basic' }],
      me: () => ({ id: '1' }),
      movies: () => ({ items: [{ id: 'm1', title: 'One' }], total: 1 }),
      secret: () => 'nobody decided who may read this',
      adminUsers: () => [{ id: '1' }],
    },
    Movie: { entitlement: () => ({ canPlay: true, reason: 'free' }) },
  };
  for (const [typeName, fields] of Object.entries(resolvers)) {
    const type = schema.getType(typeName) as GraphQLObjectType;
    for (const [fieldName, resolve] of Object.entries(fields)) {
      const field = type.getFields()[fieldName];
      if (field) field.resolve = (...args) => (calls.push(`${typeName}.${fieldName}`), resolve(...args));
    }
  }
  return { schema, calls };
}

const run = (schema: GraphQLSchema, query: string, user?: { sub: string; roles: string[] }) => execute({ schema, document: parse(query), contextValue: user ? { user } : {} });
/** Each error as [path, the catalogue's code, message] (the GraphQL renderer turns the code into extensions.code). */
const codes = (result: Awaited<ReturnType<typeof run>>) => (result.errors ?? []).map((error) => [error.path?.join('.'), (error.originalError as { code?: string } | undefined)?.code, error.message]);

describe('graphql-shield on the image’s Node', () => {
  it('is loaded from its CommonJS build, with graphql-middleware, until a release stops importing util.isUndefined', () => {
    const root = new URL('../../', import.meta.url);
    const sources = ['gateway/src', 'services'].flatMap((dir) =>
      readdirSync(new URL(dir, root), { recursive: true, encoding: 'utf8' })
        .filter((file) => file.endsWith('.ts'))
        .map((file) => readFileSync(new URL(`${dir}/${file}`, root), 'utf8')),
    );
    // Only type imports as ES modules: the values come through createRequire (permissions.ts).
    for (const source of sources) expect(source).not.toMatch(/^import (?!type )[^;]*from 'graphql-(shield|middleware)';/m);
    // The reason, still there in the release installed: util.isUndefined is gone since Node 23.
    expect(readFileSync(new URL('node_modules/graphql-shield/esm/rules.js', root), 'utf8')).toContain("import { isUndefined } from 'util';");
  });
});

describe('graphql-shield, decided once per field', () => {
  it('leaves a field open to anyone with its own resolver: nothing wraps it, nothing to await', async () => {
    const { schema } = fixture();
    const guarded = protect(schema);
    const fieldOf = (s: GraphQLSchema, type: string, field: string) => (s.getType(type) as GraphQLObjectType).getFields()[field];
    expect(fieldOf(guarded, 'Query', 'plans')?.resolve).toBe(fieldOf(schema, 'Query', 'plans')?.resolve);
    expect(fieldOf(guarded, 'Plan', 'id')?.resolve).toBeUndefined();
    expect(fieldOf(guarded, 'Query', 'me')?.resolve).not.toBe(fieldOf(schema, 'Query', 'me')?.resolve);
    const result = await run(guarded, '{ plans { id name } movies { total items { id title } } }');
    expect(result).toEqual({ data: { plans: [{ id: 'basic', name: 'Basic' }], movies: { total: 1, items: [{ id: 'm1', title: 'One' }] } } });
  });

  it('refuses a field nobody listed, before its resolver runs, for anyone', async () => {
    const { schema, calls } = fixture();
    const result = await run(protect(schema), '{ secret }', { sub: '1', roles: ['admin'] });
    expect(codes(result)).toEqual([['secret', 'FORBIDDEN', 'Not allowed']]);
    expect(calls).toEqual([]);
  });

  it('asks for a token where the contract does, and the admin role for admin fields, before any resolver runs', async () => {
    const { schema, calls } = fixture();
    const guarded = protect(schema);
    expect(codes(await run(guarded, '{ me { id } }'))).toEqual([['me', 'UNAUTHENTICATED', 'Authentication required']]);
    expect(codes(await run(guarded, '{ movies { items { entitlement { canPlay } } } }'))).toEqual([['movies.items.0.entitlement', 'UNAUTHENTICATED', 'Authentication required']]);
    expect(codes(await run(guarded, '{ adminUsers { id } }', { sub: '1', roles: ['user'] }))).toEqual([['adminUsers', 'FORBIDDEN', 'Admin access required']]);
    expect(calls).toEqual(['Query.movies']);
    expect((await run(guarded, '{ me { id } adminUsers { id } }', { sub: '1', roles: ['admin'] })).data).toEqual({ me: { id: '1' }, adminUsers: [{ id: '1' }] });
  });
});

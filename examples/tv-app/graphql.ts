import { initGraphQLTada } from 'gql.tada';
import type { introspection } from './graphql-env.d.ts';

/** `graphql()` typed from the gateway's schema.graphql: results and variables are checked by tsc. */
export const graphql = initGraphQLTada<{ introspection: introspection; scalars: { ID: string } }>();

export type { FragmentOf, ResultOf, VariablesOf } from 'gql.tada';

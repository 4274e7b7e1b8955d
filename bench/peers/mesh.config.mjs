// The GraphQL peer's composition: Mesh Compose turns each service's OpenAPI spec into a subgraph and
// composes the six into one supergraph for Hive Gateway, as a team using The Guild's stack would.
// The benchmark passes the subgraphs (name, spec file, endpoint) in BENCH_SUBGRAPHS, derived from the
// project's one list of upstreams.
import { createPrefixTransform, defineConfig } from '@graphql-mesh/compose-cli';
import { loadOpenAPISubgraph } from '@omnigraph/openapi';

const subgraphs = JSON.parse(process.env.BENCH_SUBGRAPHS ?? '[]');

export const composeConfig = defineConfig({
  subgraphs: subgraphs.map(({ name, spec, endpoint }) => ({
    sourceHandler: loadOpenAPISubgraph(name, { source: spec, endpoint }),
    // Every spec declares its own Problem, ValidationError, …: prefixed types keep them apart.
    transforms: [createPrefixTransform({ value: `${name}_` })],
  })),
});

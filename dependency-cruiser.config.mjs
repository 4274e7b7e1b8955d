// The house's floors, checked by `npm run check` (scripts/check.mjs; `npx depcruise --config
// dependency-cruiser.config.mjs gateway` to explore): no import circle anywhere, and in gateway/src
// imports run downwards only —
//   base:         errors.ts (the catalogue) and pipeline/ (the phases, the per-request state)
//   ground:       what the rest stand on: the config, the client address, the route table, the specs'
//                 operations and target normalisation (routing/), who a caller is (auth/identity.ts),
//                 request bodies, trusted documents, CORS, protocol, lifecycle, own endpoints, openapi.ts
//   observability: logs, access log, metrics, traces (readiness aside: it asks the upstreams)
//   cluster:      what the replicas share: the one Redis connection owner, the invalidation bus, shared entries
//   upstream:     the upstream client (it reports to observability)
//   guards:       authentication, rate limits, readiness, the faces plugin and the caller (faces.ts)
//   faces:        rest/ and graphql/, each on its own
//   composition:  server.ts and main.ts
// A module that needed one from a floor above was in the wrong place: the route table and the specs'
// operations moved to routing/, the attempts record to observability/, the caller to faces.ts.
const BASE = '^gateway/src/(errors\\.ts|pipeline/)';
const GROUND = '^gateway/src/((config|forwarded|openapi|own-endpoints|request-body|trusted-documents|cors|protocol|lifecycle)\\.ts$|routing/|auth/identity\\.ts$)';
const OBSERVABILITY = '^gateway/src/observability/(?!readiness\\.ts$)';
const CLUSTER = '^gateway/src/cluster/';
const UPSTREAM = '^gateway/src/upstream/';
const GUARDS = '^gateway/src/(auth/(?!identity\\.ts$)|ratelimit/|faces\\.ts$|observability/readiness\\.ts$)';
const FACES = '^gateway/src/(rest|graphql)/';
const COMPOSITION = '^gateway/src/(server|main)\\.ts$';
const FLOORS = [BASE, GROUND, OBSERVABILITY, CLUSTER, UPSTREAM, GUARDS, FACES, COMPOSITION];
const NAMES = ['base', 'ground', 'observability', 'cluster', 'upstream', 'guards', 'faces', 'composition'];

/** A module of a floor imports nothing from the floors above it (the floors' patterns do not overlap). */
const downwardsOnly = FLOORS.slice(0, -1).map((floor, index) => ({
  name: `${NAMES[index]}-imports-downwards`,
  comment: `The ${NAMES[index]} floor imports nothing from ${NAMES.slice(index + 1).join(', ')}.`,
  severity: 'error',
  from: { path: floor },
  to: { path: FLOORS.slice(index + 1) },
}));

/** @type {import('dependency-cruiser').IConfiguration} */
export default {
  forbidden: [
    ...downwardsOnly,
    { name: 'no-circular', comment: 'An import circle anywhere in the repository.', severity: 'error', from: {}, to: { circular: true } },
    { name: 'rest-face-alone', comment: 'The REST face does not import the GraphQL face.', severity: 'error', from: { path: '^gateway/src/rest/' }, to: { path: '^gateway/src/graphql/' } },
    { name: 'graphql-face-alone', comment: 'The GraphQL face does not import the REST face.', severity: 'error', from: { path: '^gateway/src/graphql/' }, to: { path: '^gateway/src/rest/' } },
    {
      name: 'mesh-runtime-behind-one-module',
      comment: 'Only graphql/mesh.ts (and its log adapter) knows the Mesh v0 runtime: replacing it is a change to that file.',
      severity: 'error',
      from: { path: '^gateway/src/', pathNot: '^gateway/src/graphql/(mesh|library-logs)\\.ts$' },
      to: { path: 'node_modules/@graphql-mesh/' },
    },
    { name: 'services-apart', comment: 'The reference services never import the gateway.', severity: 'error', from: { path: '^services/' }, to: { path: '^gateway/' } },
  ],
  options: {
    tsConfig: { fileName: 'tsconfig.json' },
    // Type-only imports count: a circle of types is a circle of knowledge.
    tsPreCompilationDeps: true,
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '^(dist|coverage)/' },
  },
};

// The house's floors, checked by `npm run check` (scripts/check.mjs; `npx depcruise --config dependency-cruiser.config.mjs gateway` to explore): no import circle anywhere, and in
// gateway/src imports run downwards only —
//   base:        errors.ts (the catalogue) and pipeline/ (the phases, the per-request state): nothing above
//   concerns:    everything else in gateway/src (auth, routing, observability, rate limits, the upstream
//                client, config, …): may use the base and each other
//   faces:       rest/ and graphql/, each on its own: may use concerns and the base
//   composition: server.ts and main.ts: may use anything
// A concern that needed a face's module is a sign the module belongs lower (routing/ holds the route
// table; openapi.ts the vocabulary every endpoint describes itself with).
const BASE = '^gateway/src/(errors\\.ts|pipeline/)';
const FACES = '^gateway/src/(rest|graphql)/';
const COMPOSITION = '^gateway/src/(server|main)\\.ts$';

/** @type {import('dependency-cruiser').IConfiguration} */
export default {
  forbidden: [
    { name: 'no-circular', comment: 'An import circle anywhere in the repository.', severity: 'error', from: {}, to: { circular: true } },
    { name: 'base-stands-alone', comment: 'The pipeline and the catalogue import nothing of what is built on them.', severity: 'error', from: { path: BASE }, to: { path: '^gateway/src/', pathNot: BASE } },
    { name: 'concerns-below-faces', comment: 'A concern imports no face and not the composition.', severity: 'error', from: { path: '^gateway/src/', pathNot: [BASE, FACES, COMPOSITION] }, to: { path: [FACES, COMPOSITION] } },
    { name: 'faces-below-composition', comment: 'A face does not import the composition.', severity: 'error', from: { path: FACES }, to: { path: COMPOSITION } },
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

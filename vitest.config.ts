import { defineConfig } from 'vitest/config';

/** SHUFFLE=<seed>: files and tests in a random order, in both tiers. */
const shuffled = process.env.SHUFFLE ? { shuffle: { files: true, tests: true }, seed: Number(process.env.SHUFFLE) } : {};

export default defineConfig({
  resolve: {
    // graphql ships .mjs and .js builds; Mesh's packages and ours must share one (one "realm").
    alias: [{ find: /^graphql$/, replacement: 'graphql/index.js' }],
  },
  test: {
    // Two tiers, each a project, side by side on the two workers: a worker serves one project's files only
    // (the unit tier's setup file is never undone in a worker that runs http files).
    projects: [
      {
        extends: true,
        // In-process: pure functions, requests through gateway.inject. The setup file makes any socket or
        // process a failure (test/unit/tier.test.ts shows it).
        test: { name: 'unit', include: ['test/unit/**/*.test.ts'], setupFiles: ['test/unit/setup.ts'] },
      },
      {
        extends: true,
        // Real sockets and processes; the built gateway (dist/) is brought up to date first.
        test: { name: 'http', include: ['test/http/**/*.test.ts'], globalSetup: ['test/global-setup.ts'] },
      },
    ],
    sequence: shuffled,
    // Whatever a test starts keeps its data in memory, never in the project's .data/ (which `npm start` uses):
    // the processes a test spawns inherit this; the in-process services are given it (test/helpers/stack.ts).
    env: { DATA_DIR: 'memory://' },
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // The http tier's suites start real servers; two workers match the two cores here.
    maxWorkers: 2,
    // A worker loads the gateway's modules (Mesh, Apollo, OpenTelemetry) once for all its files, not once a
    // file: every file builds its own gateways and state, and nothing a test changes is module-global.
    isolate: false,
    coverage: {
      provider: 'v8',
      include: ['gateway/src/**/*.ts', 'services/**/*.ts', 'shared/**/*.ts'],
      exclude: ['shared/api/**'],
      reporter: ['text-summary', 'json-summary'],
      // The floor: what the suite covers today, less a point for branches a busy machine takes or not.
      thresholds: { statements: 89, branches: 81, functions: 91, lines: 90 },
    },
  },
});

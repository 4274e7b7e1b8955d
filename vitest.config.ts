import { defineConfig } from 'vitest/config';

/**
 * SHUFFLE=<seed>: files and tests in a random order (the tiers keep theirs). Set here, not with
 * --sequence.shuffle, which would replace each tier's sequence and its groupOrder.
 */
const shuffled = process.env.SHUFFLE ? { shuffle: { files: true, tests: true }, seed: Number(process.env.SHUFFLE) } : {};

export default defineConfig({
  resolve: {
    // graphql ships .mjs and .js builds; Mesh's packages and ours must share one (one "realm").
    alias: [{ find: /^graphql$/, replacement: 'graphql/index.js' }],
  },
  test: {
    // Two tiers, each a project with workers of its own, run one after the other (sequence.groupOrder):
    // shuffled or not, no worker switches tier (it would be restarted, and load its modules again).
    projects: [
      {
        extends: true,
        // In-process: pure functions, requests through gateway.inject. The setup file makes any socket or
        // process a failure (test/unit/tier.test.ts shows it). One worker: the whole tier costs less CPU
        // than starting a second one (the checks that npm test runs alongside have the other core).
        test: { name: 'unit', include: ['test/unit/**/*.test.ts'], setupFiles: ['test/unit/setup.ts'], sequence: { groupOrder: 0 }, maxWorkers: 1 },
      },
      {
        extends: true,
        // Real sockets and processes; the built gateway (dist/) is brought up to date first.
        test: { name: 'http', include: ['test/http/**/*.test.ts'], globalSetup: ['test/global-setup.ts'], sequence: { groupOrder: 1 } },
      },
    ],
    sequence: shuffled,
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

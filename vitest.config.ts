import { defineConfig } from 'vitest/config';

export default defineConfig({
  resolve: {
    // graphql ships .mjs and .js builds; Mesh's packages and ours must share one (one "realm").
    alias: [{ find: /^graphql$/, replacement: 'graphql/index.js' }],
  },
  test: {
    // test/unit: in-process (pure functions, requests through gateway.inject); test/http: real sockets and processes.
    include: ['test/unit/**/*.test.ts', 'test/http/**/*.test.ts'],
    globalSetup: ['test/global-setup.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // Suites start real servers; two workers match the two cores here.
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

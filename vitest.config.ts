import { defineConfig } from 'vitest/config';

export default defineConfig({
  resolve: {
    // graphql ships .mjs and .js builds; Mesh's packages and ours must share one (one "realm").
    alias: [{ find: /^graphql$/, replacement: 'graphql/index.js' }],
  },
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/global-setup.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // Suites start real servers; two workers match the two cores here.
    maxWorkers: 2,
  },
});

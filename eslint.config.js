import js from '@eslint/js';
import tseslint from 'typescript-eslint';

const UNIT_TIER = 'test/unit opens no socket and starts no process: this belongs in test/http';

export default tseslint.config(
  { ignores: ['node_modules/', '.mesh/', 'coverage/', 'dist/'] },
  js.configs.recommended,
  ...tseslint.configs.strict,
  {
    languageOptions: {
      // The JavaScript files are in tsconfig.json's program (allowJs) too: one program, no per-file default projects.
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/await-thenable': 'error',
      '@typescript-eslint/consistent-type-imports': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      eqeqeq: ['error', 'always'],
      'no-console': 'off',
    },
  },
  // Tests wait for what they wait for (test/helpers/wait.ts: a bound, and a message naming it), never a fixed time.
  {
    files: ['test/**/*.ts'],
    rules: {
      'no-restricted-syntax': [
        'error',
        {
          selector: "CallExpression[callee.name='setTimeout'][arguments.0.type='Identifier'][arguments.0.name=/^(resolve|done|next)$/]",
          message: 'No sleeps in tests: wait for the event with eventually() or within() (test/helpers/wait.ts), or move the clock.',
        },
      ],
      'no-restricted-imports': ['error', { paths: [{ name: 'node:timers/promises', message: 'No sleeps in tests: wait for the event with eventually() or within() (test/helpers/wait.ts), or move the clock.' }] }],
    },
  },
  // test/unit runs in-process: no socket, no process. What could open one is not imported there (and
  // test/unit/setup.ts refuses whatever is attempted all the same, a library's included).
  {
    files: ['test/unit/**/*.ts'],
    ignores: ['test/unit/setup.ts', 'test/unit/tier.test.ts'],
    rules: {
      '@typescript-eslint/no-restricted-imports': [
        'error',
        {
          paths: [
            ...['net', 'tls', 'dgram', 'child_process', 'http2'].flatMap((name) => [name, `node:${name}`]).map((name) => ({ name, allowTypeImports: true, message: UNIT_TIER })),
            ...['http', 'https'].flatMap((name) => [name, `node:${name}`]).map((name) => ({ name, importNames: ['createServer', 'request', 'get', 'Agent', 'globalAgent', 'Server'], message: UNIT_TIER })),
            { name: 'undici', importNames: ['request', 'fetch', 'stream', 'pipeline', 'connect', 'upgrade', 'Client', 'Pool', 'BalancedPool', 'Agent', 'ProxyAgent', 'EnvHttpProxyAgent', 'setGlobalDispatcher'], message: UNIT_TIER },
            { name: 'ioredis', allowTypeImports: true, message: UNIT_TIER },
            { name: '../helpers/gateway.js', importNames: ['startGateway'], message: `${UNIT_TIER} (useInProcessGateway is this tier's gateway)` },
            { name: '../helpers/metrics.js', importNames: ['upstreamCalls', 'upstreamCallsSince', 'storeConnected'], message: `${UNIT_TIER} (upstreamCallsIn reads a gateway in-process)` },
          ],
          patterns: [
            {
              regex: '/(helpers/(stack|recording-upstream|counting-proxy|ports|process|redis|postgres|raw-http|otlp-receiver|login|graphql)|services/(registry|lib/database|lib/embedded|lib/embedded-server)|scripts/lib/processes)\\.js$',
              allowTypeImports: true,
              message: UNIT_TIER,
            },
          ],
        },
      ],
      'no-restricted-globals': ['error', { name: 'fetch', message: UNIT_TIER }],
    },
  },
  // Plain-JavaScript scripts (the build, test loader hooks) run on Node: its globals exist there.
  {
    files: ['**/*.mjs'],
    languageOptions: { globals: { Buffer: 'readonly', console: 'readonly', fetch: 'readonly', performance: 'readonly', process: 'readonly', URL: 'readonly' } },
  },
);

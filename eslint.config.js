import js from '@eslint/js';
import tseslint from 'typescript-eslint';

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
  // Plain-JavaScript scripts (the build, test loader hooks) run on Node: its globals exist there.
  {
    files: ['**/*.mjs'],
    languageOptions: { globals: { Buffer: 'readonly', console: 'readonly', fetch: 'readonly', performance: 'readonly', process: 'readonly', URL: 'readonly' } },
  },
);

// ESLint: typescript-eslint's recommended rules, and no deep imports between packages:
// a package is imported by its name (@tandem/core), never by a path into its src/ or dist/.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

const nodeGlobals = Object.fromEntries(
  [
    'process',
    'console',
    'setTimeout',
    'clearTimeout',
    'setInterval',
    'clearInterval',
    'setImmediate',
    'clearImmediate',
    'Buffer',
    'URL',
    'performance',
    'fetch',
    'AbortController',
    'AbortSignal',
    'module',
    'require',
    '__dirname',
    'NodeJS',
    'structuredClone',
    'queueMicrotask',
    'TextEncoder',
    'TextDecoder',
  ].map((n) => [n, 'readonly']),
);

export default tseslint.config(
  { ignores: ['**/dist/**', '**/node_modules/**', 'packages/protocol/gen/**', '.demo/**', 'bench/.work/**', '.tap/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts', '**/*.mjs', '**/*.js'],
    languageOptions: { globals: nodeGlobals },
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            { group: ['@tandem/*/*'], message: 'Import a package by its name only (no deep imports).' },
            {
              group: ['**/packages/*/src/**', '**/packages/*/dist/**', '../../*/src/**'],
              message: 'Import another package by its name, never by a path into it.',
            },
          ],
        },
      ],
      '@typescript-eslint/no-explicit-any': 'off',
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', destructuredArrayIgnorePattern: '^_' },
      ],
      'no-empty': ['error', { allowEmptyCatch: true }],
      // A timer handle read by a handler declared before the timer starts is not a constant.
      'prefer-const': ['error', { ignoreReadBeforeAssign: true }],
    },
  },
  {
    files: ['ecosystem.config.js'],
    languageOptions: { sourceType: 'commonjs' },
    rules: { '@typescript-eslint/no-require-imports': 'off' },
  },
);

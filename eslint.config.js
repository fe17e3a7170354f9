// @ts-check
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

const nodeIo = [
  'node:net',
  'node:fs',
  'node:fs/promises',
  'node:dgram',
  'node:tls',
  'node:child_process',
  'node:timers',
  'node:http',
];

/** test/ (frame builders, fixtures, lab helpers) serves tests, benches and examples, never what colo-proxy runs. */
const noTestImports = { group: ['**/test/**'], message: 'test/ is for tests, benches and examples only' };

export default tseslint.config(
  { ignores: ['node_modules', 'dist', 'coverage', 'examples/**/*.pcap*', '.ci'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-constant-condition': ['error', { checkLoops: false }],
    },
  },
  {
    // The one-way arrows: src -> proxy -> compare. compare/ is pure: no I/O, no timers.
    files: ['compare/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: nodeIo.map((name) => ({ name, message: 'compare/ is pure: no I/O' })),
          patterns: [
            { group: ['**/proxy/**', '**/src/**'], message: 'compare/ imports nothing from proxy/ or src/' },
            noTestImports,
          ],
        },
      ],
      'no-restricted-globals': [
        'error',
        { name: 'setTimeout', message: 'compare/ has no timers: the caller passes the time' },
        { name: 'setInterval', message: 'compare/ has no timers: the caller passes the time' },
      ],
      'no-restricted-properties': [
        'error',
        { object: 'Date', property: 'now', message: 'compare/ reads no clock: the caller passes the time' },
        { object: 'performance', property: 'now', message: 'compare/ reads no clock: the caller passes the time' },
      ],
    },
  },
  {
    files: ['proxy/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        { patterns: [{ group: ['**/src/**'], message: 'proxy/ never imports src/' }, noTestImports] },
      ],
    },
  },
  {
    files: ['src/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', { patterns: [noTestImports] }],
    },
  },
  {
    files: ['bin/**/*.js', 'eslint.config.js'],
    languageOptions: { globals: { console: 'readonly', process: 'readonly' } },
  },
);

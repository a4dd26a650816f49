// One ESLint config for the workspace: typescript-eslint's strict type-checked rules for our
// TypeScript, the recommended rules for the scripts, Prettier for layout, and the rule of direction
// (ARCHITECTURE.md) as Nx module boundaries over the project tags in each project.json.
import { existsSync } from 'node:fs';
import path from 'node:path';
import js from '@eslint/js';
import nx from '@nx/eslint-plugin';
import prettier from 'eslint-config-prettier';
import globals from 'globals';
import jsoncParser from 'jsonc-eslint-parser';
import tseslint from 'typescript-eslint';

/**
 * Which project tags a project may import, by its own tag. values is the contract and imports
 * nothing of ours; the route envelope (the wire messages native messaging and WebRTC share) knows
 * only the contract; transports know only the contract and the envelope, never each other;
 * backends and memory build on the contract (memory on memory below it); the services (the
 * route handlers) build on backends and memory, never on a transport; the app composes
 * everything; tooling (bench, scripts) may use all.
 */
const direction = [
  { sourceTag: 'type:contract', onlyDependOnLibsWithTags: ['type:contract'] },
  { sourceTag: 'type:envelope', onlyDependOnLibsWithTags: ['type:contract'] },
  { sourceTag: 'type:transport', onlyDependOnLibsWithTags: ['type:contract', 'type:envelope'] },
  { sourceTag: 'type:backend', onlyDependOnLibsWithTags: ['type:contract', 'type:backend'] },
  { sourceTag: 'type:memory', onlyDependOnLibsWithTags: ['type:contract', 'type:memory'] },
  { sourceTag: 'type:services', onlyDependOnLibsWithTags: ['type:contract', 'type:backend', 'type:memory'] },
  { sourceTag: 'type:app', onlyDependOnLibsWithTags: ['type:contract', 'type:envelope', 'type:transport', 'type:backend', 'type:memory', 'type:services'] },
  {
    sourceTag: 'type:tooling',
    onlyDependOnLibsWithTags: ['type:contract', 'type:envelope', 'type:transport', 'type:backend', 'type:memory', 'type:services', 'type:app'],
  },
];

/**
 * The TypeScript programs the type-aware rules read. Nx lints each project in its own folder:
 * that project's program alone (its sources and tests, other packages through their built
 * declarations) is all its files need, and building every project's program for each one made
 * each lint several times slower. Linting from the root covers every project.
 */
const ownProgram = path.join(process.cwd(), 'tsconfig.spec.json');
const lintedProjects = existsSync(ownProgram) ? [ownProgram] : ['./packages/*/tsconfig.spec.json', './apps/*/tsconfig.spec.json'];

/** Tests may also load real models through a backend's test-support fixtures; production code may not. */
const testDirection = direction.map((constraint) =>
  constraint.sourceTag === 'type:memory' ? { ...constraint, onlyDependOnLibsWithTags: [...constraint.onlyDependOnLibsWithTags, 'type:backend'] } : constraint,
);

const testFiles = ['**/*.test.ts', '**/test/**/*.ts', '**/test-support/**/*.ts'];

export default tseslint.config(
  {
    ignores: [
      '**/dist/**',
      '**/node_modules/**',
      '**/coverage/**',
      '.nx/**',
      'tmp/**',
      'bench/.models/**',
      'bench/.agents/**',
      'bench/.engines/**',
      '**/*.d.mts',
    ],
  },
  {
    files: ['**/*.mjs', '**/*.cjs', '**/*.js'],
    extends: [js.configs.recommended],
    languageOptions: { globals: { ...globals.node } },
  },
  {
    files: ['**/*.cjs'],
    languageOptions: { sourceType: 'commonjs' },
  },
  {
    // The test extension and the WebRTC test page run in Chromium, not Node.
    files: ['apps/server/test/browser/extension/**/*.js', 'apps/server/test/browser/webrtc-page/**/*.js'],
    languageOptions: { globals: { ...globals.browser, chrome: 'readonly' } },
  },
  {
    files: ['**/*.ts'],
    extends: [tseslint.configs.strictTypeChecked],
    plugins: { '@nx': nx },
    languageOptions: {
      parserOptions: {
        // Each project's spec tsconfig covers its sources and its tests.
        project: lintedProjects,
        projectFolderIgnoreList: ['**/node_modules/**'],
        tsconfigRootDir: import.meta.dirname,
      },
    },
    rules: {
      '@nx/enforce-module-boundaries': ['error', { allow: [], depConstraints: direction }],
      '@typescript-eslint/consistent-type-imports': ['error', { fixStyle: 'inline-type-imports' }],
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', destructuredArrayIgnorePattern: '^_' }],
      // `let x; use(() => x); x = ...` binds late for a closure built before x exists.
      'prefer-const': ['error', { ignoreReadBeforeAssign: true }],
      // Route handlers are async so that a synchronous throw becomes a rejection, as the provider
      // contract (a Promise) requires; many have nothing to await.
      '@typescript-eslint/require-await': 'off',
      // `(text) => stream.write(text)` as a callback is clear; void in other places stays refused.
      '@typescript-eslint/no-confusing-void-expression': ['error', { ignoreArrowShorthand: true }],
      // Passing on what was caught, or an AbortSignal's reason (typed any), is not inventing a non-Error.
      '@typescript-eslint/prefer-promise-reject-errors': ['error', { allowThrowingAny: true, allowThrowingUnknown: true }],
      // Numbers and booleans in messages are as readable as strings; objects and nullish values stay refused.
      '@typescript-eslint/restrict-template-expressions': ['error', { allowNumber: true, allowBoolean: true }],
    },
  },
  {
    files: testFiles,
    rules: {
      '@nx/enforce-module-boundaries': ['error', { allow: [], depConstraints: testDirection }],
      // Jest's asymmetric matchers (expect.any, expect.objectContaining, ...) are typed `any` by @types/jest.
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-unsafe-assignment': 'off',
      // Tests send the fields real clients still send (max_tokens, seed), which the openai typings mark deprecated.
      '@typescript-eslint/no-deprecated': 'off',
    },
  },
  {
    // Each package.json declares exactly the packages its production code imports (and ours only
    // downwards, which the import rule above then guarantees).
    files: ['packages/*/package.json', 'apps/*/package.json'],
    languageOptions: { parser: jsoncParser },
    plugins: { '@nx': nx },
    rules: {
      '@nx/dependency-checks': [
        'error',
        { buildTargets: ['build'], checkMissingDependencies: true, checkObsoleteDependencies: true, checkVersionMismatches: true },
      ],
    },
  },
  prettier,
);

// Lint rules that catch bugs the type checker does not, and the layering in
// STYLE.md ("who may import whom"), run by `npm test`. Type-aware: the rules
// about promises need the types (tsconfig.json).
import tseslint from 'typescript-eslint';

const ADAPTERS = ['**/store/sqlite/**', '**/store/postgres/**', '**/store/redis/**', '**/store/open-store.js'];
const ROOTS = ['**/server.js', '**/gateway-server.js', '**/main.js'];
const API = ['**/api/**'];
const ours = (groups, message) => ({ patterns: [{ group: groups, message }] });

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'examples/**/node_modules/**'] },
  {
    files: ['**/*.ts'],
    extends: [tseslint.configs.base],
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      // A promise nobody awaits or catches: its rejection kills a worker process.
      '@typescript-eslint/no-floating-promises': [
        'error',
        // node:test's describe/it return promises the runner itself awaits.
        { allowForKnownSafeCalls: [{ from: 'package', package: 'node:test', name: ['describe', 'it', 'test', 'suite', 'before', 'after', 'beforeEach', 'afterEach'] }] },
      ],
      // An async function where a callback's return is ignored (event handlers, forEach): its rejection is lost.
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/await-thenable': 'error',
      '@typescript-eslint/no-unnecessary-type-assertion': 'error',
      '@typescript-eslint/only-throw-error': 'error',
    },
  },
  {
    files: ['src/core/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', ours(['../*', '!../core/*'], 'core/ imports nothing of ours outside core/ (STYLE.md)')],
    },
  },
  {
    files: ['src/{delivery,messages,queues,schedules,url-groups,flow-control,gateway,health,streams,quotas,consumers}/**/*.ts'],
    ignores: ['**/*.test.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        ours([...ADAPTERS, ...ROOTS, ...API], 'a domain imports core/ and store/port.ts, never an adapter, the API or a root (STYLE.md)'),
      ],
    },
  },
  {
    files: ['src/{api,cli,dashboard}/**/*.ts'],
    ignores: ['**/*.test.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        ours(['**/store/**', ...ROOTS], 'the API, CLI and dashboard never import store/ or a root: they call domain services (STYLE.md)'),
      ],
    },
  },
);

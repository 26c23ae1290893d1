// ESLint, flat config: typescript-eslint's type-aware rules on the TypeScript, eslint-plugin-svelte
// on the renderer's components, and the code's formatting (@stylistic; README.md, "Tests and benchmarks").
// `npm run lint` (part of `npm run check`, hence of CI) must report nothing: no errors, no
// warnings (--max-warnings 0).
import stylistic from '@stylistic/eslint-plugin';
import tseslint from 'typescript-eslint';
import svelte from 'eslint-plugin-svelte';
import globals from 'globals';

export default tseslint.config(
  { ignores: ['dist/**', 'dist-renderer/**', 'node_modules/**', 'release/**', '**/*.js', '**/*.mjs', '**/*.cjs'] },
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      globals: { ...globals.node },
      parserOptions: { projectService: { allowDefaultProject: ['renderer/vite.config.ts'] }, tsconfigRootDir: import.meta.dirname, extraFileExtensions: ['.svelte'] },
    },
  },
  {
    rules: {
      // `_`-prefixed names are unused on purpose (destructuring a field away, a compile-time check).
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none', ignoreRestSiblings: true }],
      // Off for good: the compile-time shape checks (Same<A, B> & Same<C, D>, each `true`) are
      // intersections of equal types on purpose, which these call redundant.
      '@typescript-eslint/no-duplicate-type-constituents': 'off',
      '@typescript-eslint/no-redundant-type-constituents': 'off',
    },
  },
  {
    // The formatting the code has (README.md, "Formatting"): 2-space indent, single quotes,
    // semicolons, trailing commas in multiline lists, `} else {`, a final newline, no trailing
    // spaces. No line-length limit: a line may run long where breaking it reads worse (tables,
    // messages); most stay under ~170.
    plugins: { '@stylistic': stylistic },
    rules: {
      '@stylistic/indent': ['error', 2, { SwitchCase: 1, offsetTernaryExpressions: true }],
      '@stylistic/quotes': ['error', 'single', { avoidEscape: true, allowTemplateLiterals: 'always' }],
      '@stylistic/semi': ['error', 'always'],
      '@stylistic/comma-dangle': ['error', 'always-multiline'],
      '@stylistic/brace-style': ['error', '1tbs', { allowSingleLine: true }],
      '@stylistic/eol-last': 'error',
      '@stylistic/no-trailing-spaces': 'error',
    },
  },
  ...svelte.configs['flat/recommended'],
  {
    files: ['**/*.svelte', '**/*.svelte.ts'],
    languageOptions: { globals: { ...globals.browser }, parserOptions: { parser: tseslint.parser } },
  },
);

// Lint rules that guard architecture, not style: workflow code runs in Temporal's deterministic
// sandbox, so it may import only @temporalio/workflow and *types* from elsewhere.
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['node_modules/**', 'native/**', 'web/**', 'dist/**', 'target/**'] },
  {
    files: ['src/worker/workflows/**/*.ts'],
    languageOptions: { parser: tseslint.parser },
    plugins: { '@typescript-eslint': tseslint.plugin },
    rules: {
      '@typescript-eslint/no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              regex: '^(?!@temporalio/workflow$)',
              allowTypeImports: true,
              message: 'workflows may import only @temporalio/workflow and types (no Node, native or activity code)',
            },
          ],
        },
      ],
      'no-restricted-globals': ['error', 'process', 'require', 'Buffer', 'setImmediate'],
    },
  },
);

// Runs the API tests on their own, without the whole-stack global setup of vitest.config.ts
// (api.test.ts starts the servers it needs through api-support.ts):
//   npx vitest run --config test/integration/api.vitest.config.ts
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/unit/api*.test.ts', 'test/integration/api*.test.ts'],
    fileParallelism: false,
    testTimeout: 120_000,
    hookTimeout: 180_000,
  },
});

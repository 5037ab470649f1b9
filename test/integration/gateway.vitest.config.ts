// Runs the gateway/analytics tests on their own, without the whole-stack global setup of
// vitest.config.ts (gateway.test.ts starts the servers it needs through gateway-support.ts):
//   npx vitest run --config test/integration/gateway.vitest.config.ts
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/unit/gateway*.test.ts', 'test/unit/analytics*.test.ts', 'test/integration/gateway*.test.ts'],
    fileParallelism: false,
    testTimeout: 120_000,
    hookTimeout: 180_000,
  },
});

import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'unit',
          include: ['test/unit/**/*.test.ts'],
          testTimeout: 60_000,
        },
      },
      {
        test: {
          name: 'integration',
          include: ['test/integration/**/*.test.ts'],
          // One real stack (PostgreSQL, MinIO, Temporal, ClickHouse, Varnish, api, worker, gateway)
          // is started for the whole run, with its own data dir and free ports.
          globalSetup: ['test/support/global-setup.ts'],
          // Files run one after another: they share one stack and the machine has 2 cores.
          pool: 'forks',
          poolOptions: { forks: { singleFork: true } },
          testTimeout: 300_000,
          hookTimeout: 300_000,
        },
      },
    ],
  },
});

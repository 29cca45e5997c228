import { defineConfig } from 'vitest/config';

/**
 * `npm run test:faults`: whole networks (an owned Postgres server, the collector and two
 * probes as processes) broken and repaired, one case at a time (faults/README.md).
 */
export default defineConfig({
  test: {
    include: ['faults/**/*.test.ts'],
    exclude: ['**/node_modules/**'],
    testTimeout: 600_000,
    hookTimeout: 120_000,
    pool: 'forks',
    fileParallelism: false,
    globalSetup: ['faults/support/summary.ts'],
    reporters: ['default'],
  },
});

import { defineConfig } from 'vitest/config';

/**
 * `npm run test:faults`: whole networks (an owned Postgres server, the collector and two
 * probes as processes) broken and repaired (faults/README.md). Two cases at a time: each
 * owns its Postgres server, ports and folders, and mostly waits (on a cut, a restart, a
 * deadline), so two fit on two cores; the deadlines leave room for it.
 */
export default defineConfig({
  test: {
    // The PGlite folder lock is a fault case too (a second process on one data folder): its
    // test lives beside the lock, in collector/db/, and runs here as well as in `npm test`.
    include: ['faults/**/*.test.ts', 'collector/db/pglite-lock.test.ts'],
    exclude: ['**/node_modules/**'],
    testTimeout: 600_000,
    hookTimeout: 120_000,
    pool: 'forks',
    fileParallelism: true,
    maxWorkers: 2,
    globalSetup: ['faults/support/summary.ts'],
    reporters: ['default'],
  },
});

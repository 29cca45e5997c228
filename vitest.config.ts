import { defineConfig } from 'vitest/config';

const ALL = ['{protocol,probe,collector,testbed,dashboard,cli,e2e,fuzz,tests}/**/*.test.ts'];
const EXCLUDE = ['**/node_modules/**', 'dashboard/dist/**', 'cli/evaluate/evaluate-*.test.ts'];
/**
 * Files that measure time on this machine (an answer within 200 ms during a sweep, a
 * connection timeout, a lock going stale): they run last, one at a time, with nothing beside
 * them.
 */
const ALONE = [
  'collector/healthz-under-load.test.ts',
  'collector/db-unavailable.test.ts',
  'collector/db/pglite-client.test.ts',
  'collector/db/pglite-lock.test.ts',
];

export default defineConfig({
  test: {
    // Whole-network evaluate runs have a phase of their own: vitest.evaluate.config.ts; the
    // fault suite another (vitest.faults.config.ts).
    testTimeout: 60_000,
    hookTimeout: 120_000,
    pool: 'forks',
    reporters: ['default'],
    projects: [
      {
        extends: true,
        // Most files wait on networks, cadences and databases more than they compute: two at a
        // time on two cores.
        test: {
          name: 'suites',
          include: ALL,
          exclude: [...EXCLUDE, ...ALONE],
          maxWorkers: 2,
          sequence: { groupOrder: 0 },
        },
      },
      {
        extends: true,
        test: { name: 'alone', include: ALONE, exclude: EXCLUDE, maxWorkers: 1, sequence: { groupOrder: 1 } },
      },
    ],
  },
});

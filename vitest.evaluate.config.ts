import { defineConfig } from 'vitest/config';

/**
 * The second phase of `npm test`: `silentdrop evaluate` runs whole networks until their
 * verdicts settle, so they run alone (after the other suites, one file at a time, two rows
 * at once) rather than competing with them for the machine's cores (docs/decisions/007).
 */
export default defineConfig({
  test: {
    include: ['cli/evaluate/evaluate-*.test.ts'],
    exclude: ['**/node_modules/**'],
    testTimeout: 300_000,
    hookTimeout: 120_000,
    pool: 'forks',
    fileParallelism: false,
    maxConcurrency: 2,
    reporters: ['default'],
  },
});

import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['{protocol,probe,collector,testbed,dashboard,cli,e2e,fuzz,tests}/**/*.test.ts'],
    // Whole-network evaluate runs have a phase of their own: vitest.evaluate.config.ts.
    exclude: ['**/node_modules/**', 'dashboard/dist/**', 'cli/evaluate/evaluate-*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    pool: 'forks',
    reporters: ['default'],
  },
});

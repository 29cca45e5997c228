import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['{protocol,probe,collector,testbed,dashboard,cli,e2e}/**/*.test.ts'],
    exclude: ['**/node_modules/**', 'dashboard/dist/**'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    pool: 'forks',
    reporters: ['default'],
  },
});

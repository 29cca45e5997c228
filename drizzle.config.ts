import { defineConfig } from 'drizzle-kit';

/** `npx drizzle-kit generate` writes SQL migrations for collector/db/schema.ts into migrations/. */
export default defineConfig({
  dialect: 'postgresql',
  schema: './collector/db/schema.ts',
  out: './migrations',
});

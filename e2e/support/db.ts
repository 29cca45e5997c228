/**
 * A fresh database for one end-to-end run, for every target collector/test-support
 * knows: PGlite (the collector's own embedded database in the run's data folder) and
 * the real server from TEST_DATABASE_URL (a database created for the run and dropped
 * afterwards). The collector opens it itself, as in production.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import type { DbTarget } from '../../collector/test-support/db.ts';

export { type DbTarget, dbTargets } from '../../collector/test-support/db.ts';

export interface FreshDatabase {
  /** undefined: PGlite in the data folder. */
  url: string | undefined;
  cleanup(): Promise<void>;
}

export async function freshDatabase(target: DbTarget): Promise<FreshDatabase> {
  if (target.name === 'pglite') return { url: undefined, cleanup: async () => {} };
  const name = `sd_e2e_${Date.now().toString(36)}_${randomBytes(4).toString('hex')}`;
  const admin = new pg.Client({ connectionString: target.url });
  await admin.connect();
  await admin.query(`create database ${name}`);
  await admin.end();
  const url = new URL(target.url);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    async cleanup() {
      const c = new pg.Client({ connectionString: target.url });
      await c.connect();
      await c.query(`drop database if exists ${name} with (force)`);
      await c.end();
    },
  };
}

/**
 * Runs a DB test suite against every database target: PGlite always, and the real
 * server from TEST_DATABASE_URL when set (a fresh database per test file, created with
 * CREATE DATABASE and dropped afterwards). With SILENTDROP_REQUIRE_ALL=1 an unreachable
 * or unconfigured server fails the suite instead of skipping it.
 *
 *   describeEachDb('ingest', (getDb) => { it('…', async () => { const { db } = getDb(); … }) });
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, it } from 'vitest';
import { type Database, openDatabase } from '../db/open.ts';

export type DbTarget = { name: 'pglite' } | { name: 'postgres'; url: string };

const requireAll = process.env.SILENTDROP_REQUIRE_ALL === '1';

async function serverReachable(url: string): Promise<string | null> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 3000 });
  try {
    await client.connect();
    await client.query('select 1');
    return null;
  } catch (err) {
    return (err as Error).message;
  } finally {
    await client.end().catch(() => {});
  }
}

/** Resolved once per test file (module scope). */
const serverProblem: string | null = process.env.TEST_DATABASE_URL
  ? await serverReachable(process.env.TEST_DATABASE_URL)
  : 'TEST_DATABASE_URL is not set';

export function dbTargets(): DbTarget[] {
  const targets: DbTarget[] = [{ name: 'pglite' }];
  const url = process.env.TEST_DATABASE_URL;
  if (url && serverProblem === null) targets.push({ name: 'postgres', url });
  return targets;
}

/** A migrated database for one test file; `cleanup` closes it and drops a server database. */
export async function openTestDatabase(target: DbTarget): Promise<Database & { cleanup(): Promise<void> }> {
  if (target.name === 'pglite') {
    const database = await openDatabase({ dataDir: '', inMemory: true });
    await database.migrate();
    return { ...database, cleanup: () => database.close() };
  }
  const dbName = `sd_test_${Date.now().toString(36)}_${randomBytes(4).toString('hex')}`;
  const admin = new pg.Client({ connectionString: target.url });
  await admin.connect();
  await admin.query(`create database ${dbName}`);
  await admin.end();
  const url = new URL(target.url);
  url.pathname = `/${dbName}`;
  const database = await openDatabase({ databaseUrl: url.toString(), dataDir: '' });
  await database.migrate();
  return {
    ...database,
    async cleanup() {
      await database.close();
      const c = new pg.Client({ connectionString: target.url });
      await c.connect();
      await c.query(`drop database if exists ${dbName} with (force)`);
      await c.end();
    },
  };
}

/** The suite's server half without the server: skipped with a notice, or failed under SILENTDROP_REQUIRE_ALL=1. */
function serverMissing(name: string): void {
  if (requireAll) {
    describe(`${name} [postgres]`, () => {
      it('needs the real Postgres server (SILENTDROP_REQUIRE_ALL=1)', () => {
        throw new Error(`real Postgres unavailable: ${serverProblem}`);
      });
    });
  } else {
    describe.skip(`${name} [postgres: ${serverProblem}]`, () => {
      it('skipped', () => {});
    });
  }
}

/** One describe block per target; `getDb()` returns that target's migrated database. */
export function describeEachDb(name: string, body: (getDb: () => Database) => void): void {
  if (serverProblem !== null) serverMissing(name);
  for (const target of dbTargets()) {
    describe(`${name} [${target.name}]`, () => {
      let database: (Database & { cleanup(): Promise<void> }) | undefined;
      beforeAll(async () => {
        database = await openTestDatabase(target);
      });
      afterAll(async () => {
        await database?.cleanup();
      });
      body(() => {
        if (!database) throw new Error('test database not open');
        return database;
      });
    });
  }
}

/**
 * A suite that needs a Postgres server of its own (not PGlite): `getUrl()` is a fresh,
 * empty database on the TEST_DATABASE_URL server, dropped afterwards. Skipped with a notice
 * without the server, failed under SILENTDROP_REQUIRE_ALL=1.
 */
export function describeOnServer(name: string, body: (getUrl: () => string) => void): void {
  const url = process.env.TEST_DATABASE_URL;
  if (serverProblem !== null || !url) {
    serverMissing(name);
    return;
  }
  describe(`${name} [postgres]`, () => {
    const dbName = `sd_test_${Date.now().toString(36)}_${randomBytes(4).toString('hex')}`;
    const dbUrl = new URL(url);
    dbUrl.pathname = `/${dbName}`;
    beforeAll(async () => {
      const admin = new pg.Client({ connectionString: url });
      await admin.connect();
      await admin.query(`create database ${dbName}`);
      await admin.end();
    });
    afterAll(async () => {
      const admin = new pg.Client({ connectionString: url });
      await admin.connect();
      await admin.query(`drop database if exists ${dbName} with (force)`);
      await admin.end();
    });
    body(() => dbUrl.toString());
  });
}

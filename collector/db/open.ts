/**
 * Opens the collector's database: embedded PGlite in `<dataDir>/pglite` when no URL is
 * given, a real Postgres server through a `pg` Pool otherwise. Both get the same drizzle
 * schema, the same queries and the same migrations (migrations/, drizzle's migrator).
 *
 * PGlite is one process's database: two processes writing one folder corrupt it. The
 * folder is locked while open (proper-lockfile: a lock directory whose time is renewed
 * every few seconds, so a lock left by a killed process goes stale and is taken over,
 * also across containers sharing a volume, where process ids mean nothing).
 */
import { mkdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PGlite } from '@electric-sql/pglite';
import { sql } from 'drizzle-orm';
import { drizzle as drizzleNodePg } from 'drizzle-orm/node-postgres';
import { migrate as migrateNodePg } from 'drizzle-orm/node-postgres/migrator';
import type { PgDatabase, PgQueryResultHKT } from 'drizzle-orm/pg-core';
import { drizzle as drizzlePglite } from 'drizzle-orm/pglite';
import { migrate as migratePglite } from 'drizzle-orm/pglite/migrator';
import pg from 'pg';
import lockfile from 'proper-lockfile';
import { endPool, trackClients, watchPool } from './pg-watch.ts';
import { PGliteWorkerClient } from './pglite-client.ts';
import * as schema from './schema.ts';

/** The drizzle database both drivers provide; repositories take this (or a transaction). */
export type Db = PgDatabase<PgQueryResultHKT, typeof schema>;
/** A transaction handle: same query API as Db. */
export type Tx = Parameters<Parameters<Db['transaction']>[0]>[0];
/** Either a database or a transaction. */
export type Queryable = Db | Tx;

export interface Database {
  db: Db;
  driver: 'pglite' | 'pg';
  /** Applies pending migrations (idempotent; serialised across processes on a server). */
  migrate(): Promise<void>;
  close(): Promise<void>;
}

export interface OpenDatabaseOptions {
  /** postgres://… ; without it the embedded PGlite is used. */
  databaseUrl?: string | undefined;
  /** Data folder; PGlite lives in `<dataDir>/pglite`. */
  dataDir: string;
  /** PGlite only: keep everything in memory (tests). */
  inMemory?: boolean;
  /**
   * PGlite only: `worker` (default) runs it in a worker thread so a slow query never blocks
   * this thread's event loop (decision 013); `main` runs it here (the bench compares them).
   */
  pgliteThread?: 'worker' | 'main';
  /** A pooled server connection failed while idle (server restart): reported, not thrown. */
  onIdleError?: (err: Error) => void;
  /** Connections in the server pool (default 10). */
  poolSize?: number;
  /**
   * PGlite folder only: how long to wait for a lock another process holds, in case it was
   * killed and its lock goes stale (default: just over the stale time).
   */
  lockWaitMs?: number;
}

export const MIGRATIONS_FOLDER = resolve(dirname(fileURLToPath(import.meta.url)), '../../migrations');
/** Arbitrary constant: the advisory lock key that serialises migrations across collectors. */
const MIGRATION_LOCK_KEY = 7_260_911_204;

export async function openDatabase(options: OpenDatabaseOptions): Promise<Database> {
  if (options.databaseUrl) return openPg(options.databaseUrl, options.onIdleError, options.poolSize);
  return openPglite(options);
}

/** How long a new connection to a Postgres server may take before the request fails (503). */
export const PG_CONNECT_TIMEOUT_MS = 5_000;
/** While a connection is held this long, how often the server is checked for answering (pg-watch.ts). */
export const PG_WATCH_EVERY_MS = 1_000;
/** How long that check may take: a server that answers nothing in this time is unreachable. */
export const PG_WATCH_TIMEOUT_MS = 3_000;
/** How long closing waits for connections to end politely before cutting them. */
export const PG_CLOSE_GRACE_MS = 1_000;

/** How long a lock goes unrenewed before it counts as left by a dead process. */
export const PGLITE_LOCK_STALE_MS = 10_000;

async function openPglite(options: OpenDatabaseOptions): Promise<Database> {
  let dataDir: string | undefined;
  let unlock = async () => {};
  if (!options.inMemory) {
    dataDir = join(options.dataDir, 'pglite');
    mkdirSync(dataDir, { recursive: true });
    unlock = await lockDataFolder(dataDir, options.lockWaitMs ?? PGLITE_LOCK_STALE_MS + 2_000);
  }
  try {
    const database =
      options.pgliteThread === 'main' ? await openPgliteInThread(dataDir) : await openPgliteWorker(dataDir);
    return {
      ...database,
      close: async () => {
        try {
          await database.close();
        } finally {
          await unlock();
        }
      },
    };
  } catch (err) {
    await unlock();
    throw err;
  }
}

/**
 * Takes the lock on a PGlite folder, waiting up to `waitMs` for a stale one (a process that
 * was killed) to be taken over; refuses with a clear message while another process holds it.
 */
async function lockDataFolder(dataDir: string, waitMs: number): Promise<() => Promise<void>> {
  const tries = Math.max(0, Math.ceil(waitMs / 1_000));
  try {
    const release = await lockfile.lock(dataDir, {
      stale: PGLITE_LOCK_STALE_MS,
      update: PGLITE_LOCK_STALE_MS / 4,
      retries: { retries: tries, factor: 1, minTimeout: 1_000, maxTimeout: 1_000 },
      // Renewal failed (the lock was taken over or the folder vanished): writing on would
      // risk the database, so the process stops, as it would on a failing disk.
      onCompromised: (err) => {
        throw new Error(`lost the lock on the data folder ${dataDir}: ${err.message}`);
      },
    });
    let released = false;
    return async () => {
      if (released) return;
      released = true;
      await release().catch(() => {});
    };
  } catch (err) {
    if ((err as { code?: string }).code === 'ELOCKED') {
      throw new Error(
        `the data folder ${dataDir} is in use by another silentdrop process ` +
          '(two processes on one embedded database would corrupt it); stop that one first, ' +
          'or give this one its own data folder (--data or SILENTDROP_DATA)',
      );
    }
    throw err;
  }
}

async function openPgliteWorker(dataDir: string | undefined): Promise<Database> {
  const client = await PGliteWorkerClient.start({ dataDir });
  // The client has the part of PGlite's interface the driver uses (query, exec, transaction).
  const db = drizzlePglite({ client: client as unknown as PGlite, schema });
  return {
    db: db as unknown as Db,
    driver: 'pglite',
    migrate: () => migratePglite(db, { migrationsFolder: MIGRATIONS_FOLDER }),
    close: () => client.close(),
  };
}

async function openPgliteInThread(dataDir: string | undefined): Promise<Database> {
  let client: PGlite;
  if (!dataDir) {
    client = new PGlite();
  } else {
    client = new PGlite(dataDir);
  }
  await client.waitReady;
  const db = drizzlePglite({ client, schema });
  return {
    db: db as unknown as Db,
    driver: 'pglite',
    migrate: () => migratePglite(db, { migrationsFolder: MIGRATIONS_FOLDER }),
    close: () => client.close(),
  };
}

async function openPg(url: string, onIdleError?: (err: Error) => void, poolSize = 10): Promise<Database> {
  // TLS comes from the URL (`?sslmode=verify-full&sslrootcert=…`, pg's connection-string options).
  // A server that is down or unreachable fails a request within the connection timeout
  // (the API answers 503 with a retry hint) instead of holding it; keep-alive notices a
  // connection whose peer vanished.
  const pool = new pg.Pool({
    connectionString: url,
    max: poolSize,
    connectionTimeoutMillis: PG_CONNECT_TIMEOUT_MS,
    keepAlive: true,
    keepAliveInitialDelayMillis: 10_000,
  });
  // Without a listener an idle client's error would crash the process; the pool replaces it.
  pool.on('error', (err) => onIdleError?.(err));
  const clients = trackClients(pool, (err) => onIdleError?.(err));
  // Fail fast with the driver's message if the server is unreachable or the URL is wrong.
  const probe = await pool.connect();
  probe.release();
  // A server that stops answering on open connections: cut them rather than wait (pg-watch.ts).
  const watch = watchPool(pool, clients, url, {
    everyMs: PG_WATCH_EVERY_MS,
    timeoutMs: PG_WATCH_TIMEOUT_MS,
    onUnreachable: (cut) =>
      onIdleError?.(
        new Error(
          `the database server did not answer within ${PG_WATCH_TIMEOUT_MS} ms; cut ${cut} connections`,
        ),
      ),
  });
  const db = drizzleNodePg({ client: pool, schema });
  return {
    db: db as unknown as Db,
    driver: 'pg',
    async migrate() {
      // A session lock on one connection while the migrator runs on the pool: several
      // collectors starting together apply each migration once.
      const lockClient = await pool.connect();
      try {
        await lockClient.query('select pg_advisory_lock($1)', [MIGRATION_LOCK_KEY]);
        await migrateNodePg(db, { migrationsFolder: MIGRATIONS_FOLDER });
      } finally {
        await lockClient.query('select pg_advisory_unlock($1)', [MIGRATION_LOCK_KEY]).catch(() => {});
        lockClient.release();
      }
    },
    close: async () => {
      watch.stop();
      await endPool(pool, clients, PG_CLOSE_GRACE_MS);
    },
  };
}

/**
 * Refreshes the query planner's statistics. A Postgres server does this by itself
 * (autovacuum); embedded PGlite never does, and without statistics it picks full-table
 * plans for the research API's keyset reads as tables grow.
 */
export async function refreshPlannerStatistics(database: Database): Promise<void> {
  if (database.driver === 'pglite') await database.db.execute(sql`analyze`);
}

/**
 * Makes the space of deleted events reusable. A Postgres server's autovacuum does this by
 * itself; embedded PGlite runs no autovacuum, so the retention job calls this after it
 * deleted rows (collector/retention.ts).
 */
export async function reclaimEventSpace(database: Database): Promise<void> {
  if (database.driver === 'pglite') await database.db.execute(sql`vacuum events`);
}

/** Rows of a raw `sql` query, the same on both drivers. */
export async function rows<T>(q: Queryable, query: ReturnType<typeof sql>): Promise<T[]> {
  const result = (await q.execute(query)) as unknown as { rows: T[] };
  return result.rows;
}

/**
 * Monthly partitions of `events` (migration 0022, decision 039) and `outcomes` (migration
 * 0023, decision 040): made ahead of the months rows will land in, and, for `events`, dropped
 * once a past month is empty (the retention job's row deletes empty it, collector/retention.ts),
 * which returns its space at once. Outcomes are the research record and are never deleted
 * (decision 017), so their months are never dropped.
 *
 * `events` is partitioned by received_at, the collector's (database's) clock, so a probe
 * cannot choose a partition; `outcomes` by deadline_at, its canary's deadline, which the
 * collector sets when it plans the canary. A default partition takes any row outside the
 * months that exist, so an insert never fails for want of a partition; it is expected to
 * stay empty.
 */
import { type SQL, sql } from 'drizzle-orm';
import { sqlState } from './errors.ts';
import { type Queryable, rows } from './open.ts';

/**
 * Outcome `o` belongs to canary `c`'s month: `o.deadline_at` is `c.deadline_at` (decision 040),
 * to add to every join on `o.canary_id = c.id` so that Postgres reads only that month's
 * partition once it knows the canary. Written as a closed range, not `=`: the planner
 * multiplies the selectivities of a join's clauses as if independent, and a second equality
 * as selective as the canary id made it expect one row where there were hundreds of
 * thousands (a keyset page went from 4 ms to 3 s, a hash join and a sort of every outcome in
 * place of the send-time index). The two inequalities cost the estimate a factor of about 9
 * and prune the same.
 */
export const sameDeadline = (o: string, c: string): SQL =>
  sql.raw(`${o}.deadline_at >= ${c}.deadline_at and ${o}.deadline_at <= ${c}.deadline_at`);

/**
 * sameDeadline for a subquery correlated to canary `c` (an `exists`, a scalar count): plain
 * `=`. Its estimate does not size the outer rows, and an equality is what lets the planner
 * either hash the subquery once (canary id and deadline as the key; a range is no hash key)
 * or probe the one month per row (an export of one day of 13 months: 19 ms with it, 290 ms
 * probing every month without it).
 */
export const sameDeadlineInSubquery = (o: string, c: string): SQL =>
  sql.raw(`${o}.deadline_at = ${c}.deadline_at`);

/** Months made ahead of the current one (a received_at is the database's clock: now). */
export const MONTHS_AHEAD = 2;

/** How long partition upkeep waits for a table lock before leaving the work to its next run. */
const LOCK_TIMEOUT = '2s';

/** The partitioned tables and the column each is partitioned by. */
export const PARTITION_KEYS = { events: 'received_at', outcomes: 'deadline_at' } as const;
export type PartitionedTable = keyof typeof PARTITION_KEYS;

const NAME = /^(?:events|outcomes)_(\d{4})_(\d{2})$/;

/** The first instant of the UTC month of `at`, `offset` months on. */
export function monthStart(at: Date, offset = 0): Date {
  return new Date(Date.UTC(at.getUTCFullYear(), at.getUTCMonth() + offset, 1));
}

/** The partition of `table` for the month that starts at `month`: e.g. events_YYYY_MM. */
export function partitionName(month: Date, table: PartitionedTable = 'events'): string {
  return `${table}_${month.getUTCFullYear()}_${String(month.getUTCMonth() + 1).padStart(2, '0')}`;
}

/** The month a partition's name says, or null for a table that is not one of ours. */
function monthOf(name: string): Date | null {
  const m = NAME.exec(name);
  if (!m) return null;
  const month = Number(m[2]);
  if (month < 1 || month > 12) return null;
  return new Date(Date.UTC(Number(m[1]), month - 1, 1));
}

/** The database's clock: what received_at is stamped with, and what deadlines follow. */
async function databaseNow(q: Queryable): Promise<Date> {
  const [row] = await rows<{ ms: number }>(q, sql`select (extract(epoch from now()) * 1000)::float8 as ms`);
  return new Date(row!.ms);
}

/** The monthly partitions of `table` there are, oldest first (the default left out). */
export async function partitionsOf(
  q: Queryable,
  table: PartitionedTable = 'events',
): Promise<{ name: string; month: Date }[]> {
  const found = await rows<{ name: string }>(
    q,
    sql`select c.relname as name from pg_inherits i
        join pg_class c on c.oid = i.inhrelid
        join pg_class p on p.oid = i.inhparent
        join pg_namespace n on n.oid = p.relnamespace
        where p.relname = ${table} and n.nspname = current_schema()`,
  );
  return found
    .flatMap((r) => {
      const month = monthOf(r.name);
      return month ? [{ name: r.name, month }] : [];
    })
    .sort((a, b) => a.month.getTime() - b.month.getTime());
}

export interface EnsureResult {
  /** Partitions made by this call. */
  created: string[];
  /**
   * Of those, the ones made from rows the default partition held (a month not made in time):
   * each with the number of rows moved into it.
   */
  moved: { name: string; rows: number }[];
}

/**
 * Makes the partitions of `table` for the current month and the next MONTHS_AHEAD ones that
 * do not exist yet. Safe to run from several collectors at once (a transaction advisory lock,
 * `if not exists`); a month that cannot be made within the lock timeout (a busy table) is
 * made by the next run, and rows meanwhile land in the default partition. A month whose rows
 * sit in the default partition (Postgres would refuse a partition beside them) is made from
 * them: they move into a new table, which is attached as the month's partition, in one
 * transaction, so every row stays readable throughout.
 */
export async function ensurePartitions(
  db: Queryable,
  table: PartitionedTable,
  now?: Date,
): Promise<EnsureResult> {
  // Table and column names are ours (PARTITION_KEYS), not anyone's input.
  const key = PARTITION_KEYS[table];
  const fallback = `${table}_default`;
  return db.transaction(async (tx) => {
    const at = now ?? (await databaseNow(tx));
    await tx.execute(sql`select pg_advisory_xact_lock(hashtextextended(${`partitions:${table}`}, 0))`);
    await tx.execute(sql.raw(`set local lock_timeout = '${LOCK_TIMEOUT}'`));
    const have = new Set((await partitionsOf(tx, table)).map((p) => p.name));
    const result: EnsureResult = { created: [], moved: [] };
    for (let i = 0; i <= MONTHS_AHEAD; i++) {
      const from = monthStart(at, i).toISOString();
      const to = monthStart(at, i + 1).toISOString();
      const name = partitionName(monthStart(at, i), table);
      if (have.has(name)) continue;
      // The name and bounds are ours (digits and an ISO instant), not anyone's input.
      const bounds = `for values from ('${from}') to ('${to}')`;
      const [inDefault] = await rows<{ any: boolean }>(
        tx,
        sql`select exists (select 1 from ${sql.identifier(fallback)}
              where ${sql.identifier(key)} >= ${from}::timestamptz and ${sql.identifier(key)} < ${to}::timestamptz) as any`,
      );
      if (!inDefault?.any) {
        await tx.execute(sql.raw(`create table if not exists ${name} partition of ${table} ${bounds}`));
        result.created.push(name);
        continue;
      }
      await tx.execute(sql.raw(`lock table ${fallback} in access exclusive mode`));
      await tx.execute(
        sql.raw(`create table ${name} (like ${table} including defaults including constraints)`),
      );
      const [moved] = await rows<{ n: number }>(
        tx,
        sql`with m as (delete from ${sql.identifier(fallback)}
              where ${sql.identifier(key)} >= ${from}::timestamptz and ${sql.identifier(key)} < ${to}::timestamptz
              returning *),
            i as (insert into ${sql.identifier(name)} select * from m returning 1)
            select count(*)::int as n from i`,
      );
      // Attaching makes the month's indexes, key and foreign keys, as for any partition.
      await tx.execute(sql.raw(`alter table ${table} attach partition ${name} ${bounds}`));
      result.created.push(name);
      result.moved.push({ name, rows: moved?.n ?? 0 });
    }
    return result;
  });
}

/**
 * ensurePartitions for every partitioned table, the results put together (a name tells its
 * table). A table whose lock was not had within the lock timeout (ingest held it) is in
 * `deferred`: its months are made by a later run (they are made MONTHS_AHEAD ahead).
 */
export async function ensureAllPartitions(
  db: Queryable,
  now?: Date,
): Promise<EnsureResult & { deferred: PartitionedTable[] }> {
  const all = {
    created: [] as string[],
    moved: [] as EnsureResult['moved'],
    deferred: [] as PartitionedTable[],
  };
  for (const table of Object.keys(PARTITION_KEYS) as PartitionedTable[]) {
    try {
      const made = await ensurePartitions(db, table, now);
      all.created.push(...made.created);
      all.moved.push(...made.moved);
    } catch (err) {
      // 55P03 lock_not_available: ingest holds the table now.
      if (sqlState(err) !== '55P03') throw err;
      all.deferred.push(table);
    }
  }
  return all;
}

/**
 * Drops the monthly `events` partitions of months wholly before the current one that hold no row:
 * the retention job's row deletes decide what goes (decision 017), and dropping an emptied
 * month returns its space at once (row deletes leave it to vacuum, and on PGlite to the
 * file's reuse). One transaction per month; a month whose lock is not had within the lock
 * timeout is left for the next run, and one another collector dropped meanwhile is passed
 * over. Returns the partitions this call dropped.
 */
export async function dropEmptyEventPartitions(db: Queryable, now?: Date): Promise<string[]> {
  const at = now ?? (await databaseNow(db));
  const current = monthStart(at);
  const dropped: string[] = [];
  for (const { name, month } of await partitionsOf(db, 'events')) {
    if (monthStart(month, 1).getTime() > current.getTime()) break;
    try {
      const gone = await db.transaction(async (tx) => {
        await tx.execute(sql.raw(`set local lock_timeout = '${LOCK_TIMEOUT}'`));
        // Locked first, so no row can land in it between the check and the drop.
        await tx.execute(sql.raw(`lock table ${name} in access exclusive mode`));
        const [row] = await rows<{ any: boolean }>(
          tx,
          sql.raw(`select exists (select 1 from ${name}) as any`),
        );
        if (row?.any) return false;
        await tx.execute(sql.raw(`drop table ${name}`));
        return true;
      });
      if (gone) dropped.push(name);
    } catch (err) {
      // 55P03 lock_not_available: ingest holds the table now; the next run tries again.
      // 42P01 undefined_table: another collector on this database dropped it first.
      const state = sqlState(err);
      if (state !== '55P03' && state !== '42P01') throw err;
    }
  }
  return dropped;
}

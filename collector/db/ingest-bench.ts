/**
 * What bench/ingest.ts needs of a Postgres server beyond the collector's own data layer: a
 * scratch database, the CPU its backends used, and COPY into the events table (the bulk
 * baseline ingest is compared with). Benchmark support only; the collector never calls it.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { sql } from 'drizzle-orm';
import pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import type { Db } from './open.ts';
import { ensurePartitions, monthStart } from './partitions.ts';

export interface ScratchDatabase {
  name: string;
  url: string;
  /** CPU (ms) the backends connected to it used so far, from /proc (same machine only), or null. */
  backendCpuMs(): Promise<number | null>;
  drop(): Promise<void>;
  /** Lets the database go without dropping it (a `--keep` run): closes the admin connection. */
  release(): Promise<void>;
}

/** Creates an empty database on the server of `baseUrl` (a database the role may create from). */
export async function createScratchDatabase(baseUrl: string, prefix: string): Promise<ScratchDatabase> {
  const name = `${prefix}_${randomBytes(4).toString('hex')}`;
  const admin = new pg.Client({ connectionString: baseUrl });
  await admin.connect();
  await admin.query(`create database ${name}`);
  return scratchOn(baseUrl, name, admin);
}

/**
 * A database an earlier run kept (`--keep`), on the server of `baseUrl`, to measure again
 * without seeding it. `drop` leaves it in place: this run did not make it.
 */
export async function keptScratchDatabase(baseUrl: string, name: string): Promise<ScratchDatabase> {
  if (!/^[a-z][a-z0-9_]{0,62}$/.test(name)) throw new Error(`not a database name: ${JSON.stringify(name)}`);
  const admin = new pg.Client({ connectionString: baseUrl });
  await admin.connect();
  const { rows } = await admin.query('select 1 from pg_database where datname = $1', [name]);
  if (rows.length === 0) {
    await admin.end();
    throw new Error(`no database ${name} on that server`);
  }
  const scratch = scratchOn(baseUrl, name, admin);
  return { ...scratch, drop: () => scratch.release() };
}

function scratchOn(baseUrl: string, name: string, admin: pg.Client): ScratchDatabase {
  const u = new URL(baseUrl);
  u.pathname = `/${name}`;
  return {
    name,
    url: u.toString(),
    async backendCpuMs() {
      const { rows } = await admin.query<{ pid: number }>(
        'select pid from pg_stat_activity where datname = $1',
        [name],
      );
      return cpuOfPids(rows.map((r) => r.pid));
    },
    async drop() {
      await admin.query(`drop database if exists ${name} with (force)`);
      await admin.end();
    },
    release: () => admin.end(),
  };
}

/** CPU (ms) these processes used so far, from /proc (same machine only), or null. */
function cpuOfPids(pids: number[]): number | null {
  let ticks = 0;
  try {
    for (const pid of pids) {
      const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
      ticks += Number(fields[11]) + Number(fields[12]); // utime + stime (stat fields 14, 15)
    }
  } catch {
    return null;
  }
  return (ticks * 1000) / 100; // USER_HZ is 100 on Linux
}

/**
 * COPY rows into events (event_id, probe_id, request_id, signature, type, platform,
 * account_id, conversation, canary_id, nonce, at, clock_offset_ms, raw), in one transaction.
 * Returns the CPU (ms) its backend used, read before it exits (null where /proc cannot tell).
 */
export async function copyEvents(
  url: string,
  rows: readonly (readonly (string | null)[])[],
): Promise<number | null> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  const esc = (v: string | null) =>
    v === null
      ? '\\N'
      : v.replace(/\\/g, '\\\\').replace(/\t/g, '\\t').replace(/\n/g, '\\n').replace(/\r/g, '\\r');
  function* lines() {
    for (const r of rows) yield `${r.map(esc).join('\t')}\n`;
  }
  try {
    const { rows: me } = await client.query<{ pid: number }>('select pg_backend_pid() as pid');
    const pid = me[0]!.pid;
    const before = cpuOfPids([pid]);
    await client.query('begin');
    await pipeline(
      Readable.from(lines()),
      client.query(
        copyFrom(
          'copy events (event_id, probe_id, request_id, signature, type, platform, account_id, ' +
            'conversation, canary_id, nonce, at, clock_offset_ms, raw) from stdin',
        ),
      ),
    );
    await client.query('commit');
    const after = cpuOfPids([pid]);
    return before !== null && after !== null ? after - before : null;
  } finally {
    await client.end();
  }
}

/**
 * Planner statistics for every table, as a collector in service has them (autovacuum on a
 * server; refreshPlannerStatistics on PGlite). Without them a fresh database plans lookups
 * of a few hundred ids as scans of the whole table.
 */
export async function analyzeTables(db: Db): Promise<void> {
  await db.execute(sql`analyze`);
}

/**
 * Months of events as a collector in service keeps them (decision 039: one partition a month,
 * 365 days kept by default): the partitions of the `months` months before the current one,
 * each filled with `rowsPerMonth` events of this probe and account spread over the month
 * (canary ids that name no canary: their only part here is the indexes' size). In batches
 * of 50,000 rows, one statement each.
 */
export async function fillPastMonths(
  db: Db,
  months: number,
  rowsPerMonth: number,
  probeId: string,
  accountId: string,
): Promise<void> {
  const now = new Date();
  for (let i = months; i >= 1; i--) {
    const from = monthStart(now, -i);
    await ensurePartitions(db, 'events', from);
    const spanMs = monthStart(now, -i + 1).getTime() - from.getTime();
    for (let done = 0; done < rowsPerMonth; done += 50_000) {
      const n = Math.min(50_000, rowsPerMonth - done);
      await db.execute(
        sql`insert into events (event_id, probe_id, request_id, signature, type, platform, account_id,
              conversation, canary_id, nonce, at, clock_offset_ms, raw, received_at)
            select gen_random_uuid(), ${probeId}::uuid, gen_random_uuid(), 'bench-signature', 'sent',
              'testbed', ${accountId}::uuid, 'bench', gen_random_uuid(), null, t, 0,
              jsonb_build_object('type', 'sent', 'text', 'bench ' || g), t
            from generate_series(1, ${n}::int) as g,
              lateral (select ${from.toISOString()}::timestamptz
                + (random() * ${spanMs}::float8) * interval '1 millisecond' as t) as r`,
      );
    }
  }
}

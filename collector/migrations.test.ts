import { execFile } from 'node:child_process';
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { promisify } from 'node:util';
import { PGlite } from '@electric-sql/pglite';
import { is, sql } from 'drizzle-orm';
import { drizzle as drizzleNodePg } from 'drizzle-orm/node-postgres';
import { migrate as migrateNodePg } from 'drizzle-orm/node-postgres/migrator';
import { getTableConfig, IndexedColumn, PgTable } from 'drizzle-orm/pg-core';
import { drizzle as drizzlePglite } from 'drizzle-orm/pglite';
import { migrate as migratePglite } from 'drizzle-orm/pglite/migrator';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { type Database, type Db, MIGRATIONS_FOLDER, openDatabase, rows } from './db/open.ts';
import * as schema from './db/schema.ts';
import { describeEachDb, describeOnServer } from './test-support/db.ts';

const run = promisify(execFile);
const root = resolve(MIGRATIONS_FOLDER, '..');

describe('migrations', () => {
  it('match the drizzle schema (drizzle-kit generate writes nothing new)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sd-migrations-'));
    try {
      const out = join(dir, 'migrations');
      cpSync(MIGRATIONS_FOLDER, out, { recursive: true });
      const config = join(dir, 'drizzle.config.ts');
      writeFileSync(
        config,
        // drizzle-kit wants paths relative to its working directory (it prefixes "./").
        `export default ${JSON.stringify({
          dialect: 'postgresql',
          schema: './collector/db/schema.ts',
          out: relative(root, out),
        })};\n`,
      );
      const before = readdirSync(out).sort();
      const { stdout, stderr } = await run(
        join(root, 'node_modules/.bin/drizzle-kit'),
        ['generate', '--config', config],
        { cwd: root },
      );
      const after = readdirSync(out).sort();
      expect(after, `schema and migrations disagree; run npx drizzle-kit generate\n${stdout}`).toEqual(
        before,
      );
      // drizzle-kit exits 0 even when it fails to read the folder: insist on its all-clear.
      expect(`${stdout}${stderr}`).toMatch(/No schema changes/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

/** serial types are integers with a sequence default once created */
const SERIAL: Record<string, string> = { smallserial: 'smallint', serial: 'integer', bigserial: 'bigint' };

/**
 * What the drizzle schema declares, one line per column, index (with its columns, unique,
 * primary, partial), foreign key and check, in the words of `inDatabase` below.
 */
function declared(): string[] {
  const out: string[] = [];
  const tables = Object.values(schema as Record<string, unknown>).filter((t): t is PgTable => is(t, PgTable));
  for (const t of tables) {
    const c = getTableConfig(t);
    const names = (cols: { name: string }[]) => cols.map((x) => x.name).join(', ');
    for (const col of c.columns) {
      const type = SERIAL[col.getSQLType()] ?? col.getSQLType();
      out.push(`${c.name} column ${col.name} ${type}${col.notNull ? ' not null' : ''}`);
      if (col.primary) out.push(`${c.name} index ${c.name}_pkey unique primary (${col.name})`);
      if (col.isUnique) out.push(`${c.name} index ${col.uniqueName} unique (${col.name})`);
    }
    for (const i of c.indexes) {
      const cols = i.config.columns.map((x) => (is(x, IndexedColumn) ? x.name : 'expr')).join(', ');
      out.push(
        `${c.name} index ${i.config.name}${i.config.unique ? ' unique' : ''} (${cols})${i.config.where ? ' partial' : ''}`,
      );
    }
    for (const p of c.primaryKeys)
      out.push(`${c.name} index ${p.getName()} unique primary (${names(p.columns)})`);
    for (const u of c.uniqueConstraints)
      out.push(`${c.name} index ${u.getName()} unique (${names(u.columns)})`);
    for (const f of c.foreignKeys) {
      const r = f.reference();
      out.push(
        `${c.name} foreign key ${f.getName()} (${names(r.columns)}) references ${getTableConfig(r.foreignTable).name} (${names(r.foreignColumns)})`,
      );
    }
    for (const k of c.checks) out.push(`${c.name} check ${k.name}`);
  }
  return out.sort();
}

/**
 * The same lines read from the catalogue of a migrated database (schema public), partitions
 * left out: what a partitioned table declares, its partitions inherit (decision 039).
 */
async function inDatabase(db: Db): Promise<string[]> {
  const found = await rows<{ line: string }>(
    db,
    sql`select t.relname || ' column ' || a.attname || ' ' || format_type(a.atttypid, a.atttypmod)
          || case when a.attnotnull then ' not null' else '' end as line
        from pg_attribute a join pg_class t on t.oid = a.attrelid join pg_namespace n on n.oid = t.relnamespace
        where n.nspname = 'public' and not t.relispartition and t.relkind in ('r', 'p') and a.attnum > 0 and not a.attisdropped
      union all
      select t.relname || ' index ' || i.relname || case when x.indisunique then ' unique' else '' end
          || case when x.indisprimary then ' primary' else '' end
          || ' (' || array_to_string(array(
               select coalesce(a.attname, 'expr') from unnest(x.indkey::int2[]) with ordinality k(n, o)
               left join pg_attribute a on a.attrelid = t.oid and a.attnum = k.n order by k.o), ', ') || ')'
          || case when x.indpred is not null then ' partial' else '' end
        from pg_index x join pg_class i on i.oid = x.indexrelid join pg_class t on t.oid = x.indrelid
        join pg_namespace n on n.oid = t.relnamespace where n.nspname = 'public' and not t.relispartition
      union all
      select t.relname || ' foreign key ' || k.conname
          || ' (' || array_to_string(array(select a.attname from unnest(k.conkey) with ordinality u(n, o)
               join pg_attribute a on a.attrelid = k.conrelid and a.attnum = u.n order by u.o), ', ')
          || ') references ' || r.relname
          || ' (' || array_to_string(array(select a.attname from unnest(k.confkey) with ordinality u(n, o)
               join pg_attribute a on a.attrelid = k.confrelid and a.attnum = u.n order by u.o), ', ') || ')'
        from pg_constraint k join pg_class t on t.oid = k.conrelid join pg_class r on r.oid = k.confrelid
        join pg_namespace n on n.oid = t.relnamespace where n.nspname = 'public' and not t.relispartition and k.contype = 'f'
      union all
      select t.relname || ' check ' || k.conname
        from pg_constraint k join pg_class t on t.oid = k.conrelid join pg_namespace n on n.oid = t.relnamespace
        where n.nspname = 'public' and not t.relispartition and k.contype = 'c'`,
  );
  return found.map((r) => r.line).sort();
}

/** Lines on one side only. */
function difference(db: string[], want: string[]) {
  const inDb = new Set(db);
  const inSchema = new Set(want);
  return {
    onlyInDatabase: db.filter((l) => !inSchema.has(l)),
    onlyInSchema: want.filter((l) => !inDb.has(l)),
  };
}

describeEachDb('migrate', (getDb) => {
  it('applies again without error or change', async () => {
    await getDb().migrate();
    await getDb().migrate();
  });

  // drizzle-kit compares the schema with its snapshots, not with what the SQL files build; a
  // hand-written migration (a table rebuilt for partitions, say) can lose an index unseen.
  it('builds exactly what the schema declares: tables, columns, indexes, foreign keys and checks', async () => {
    const { db } = getDb();
    const want = declared();
    expect(want.length).toBeGreaterThan(100);
    expect(difference(await inDatabase(db), want)).toEqual({ onlyInDatabase: [], onlyInSchema: [] });
    // and the comparison sees a lost index and an index the schema does not know
    await db.execute(sql`drop index canaries_send_at_id_idx`);
    await db.execute(sql`create index canaries_stray_idx on canaries (text)`);
    expect(difference(await inDatabase(db), want)).toEqual({
      onlyInDatabase: ['canaries index canaries_stray_idx (text)'],
      onlyInSchema: ['canaries index canaries_send_at_id_idx (send_at, id)'],
    });
  });
});

/**
 * A copy of the migrations folder that stops before `tag` (its journal trimmed to match),
 * in a fresh temporary folder: a database migrated with it is one made before `tag`.
 */
function migrationsBefore(tag: string): { folder: string; remove(): void } {
  const dir = mkdtempSync(join(tmpdir(), 'sd-migrations-before-'));
  const folder = join(dir, 'migrations');
  cpSync(MIGRATIONS_FOLDER, folder, { recursive: true });
  const journalFile = join(folder, 'meta', '_journal.json');
  const journal = JSON.parse(readFileSync(journalFile, 'utf8')) as {
    entries: { idx: number; tag: string }[];
  };
  const at = journal.entries.findIndex((e) => e.tag === tag);
  if (at < 0) throw new Error(`no migration ${tag}`);
  for (const e of journal.entries.slice(at)) rmSync(join(folder, `${e.tag}.sql`));
  journal.entries = journal.entries.slice(0, at);
  writeFileSync(journalFile, JSON.stringify(journal));
  return { folder, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Events received at these instants, in a database made before migration 0022. */
const EVENTS_BEFORE_0022 = [
  '1990-05-01T00:00:00Z', // older than the ten years the migration makes months for: default
  '2025-06-30T23:59:59.999Z',
  '2025-07-01T00:00:00Z',
  '2026-11-15T10:00:00Z',
  '2199-01-01T00:00:00Z', // a clock far ahead: default
];
const insertOldEvents = `
  insert into probes (id, public_key, country, asn, software_version)
    values ('00000000-0000-4000-8000-000000000001', 'k', 'US', 1, '0');
  insert into accounts (id, probe_id, platform, handle, region, adapter_name, adapter_version, state)
    values ('00000000-0000-4000-8000-000000000002', '00000000-0000-4000-8000-000000000001', 'testbed', 'a',
      'US', 'testbed', '0', 'active');
  insert into events (event_id, probe_id, request_id, signature, type, platform, account_id, conversation,
    canary_id, nonce, at, clock_offset_ms, raw, received_at)
  select gen_random_uuid(), '00000000-0000-4000-8000-000000000001', gen_random_uuid(), 's', 'sent', 'testbed',
    '00000000-0000-4000-8000-000000000002', 'g', gen_random_uuid(), null, r, 0, jsonb_build_object('n', n), r
  from unnest(array[${EVENTS_BEFORE_0022.map((t) => `'${t}'::timestamptz`).join(', ')}])
    with ordinality as t(r, n)`;

/** After 0022: every event kept, each in the partition of its month (or the default). */
async function expectEventsInTheirMonths(db: Db): Promise<void> {
  const found = await rows<{ at: string; p: string; n: number }>(
    db,
    sql`select to_char(received_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS') as at,
          tableoid::regclass::text as p, (raw->>'n')::int as n
        from events order by received_at`,
  );
  await expectInTheirMonths(db, 'events', found);
}

/**
 * `found` (the rows seeded at EVENTS_BEFORE_0022's instants, in order, with their partition)
 * went to the partitions of their months, or the default; and every month between the oldest
 * and this month's next ones has its partition.
 */
async function expectInTheirMonths(
  db: Db,
  table: 'events' | 'outcomes',
  found: { at: string; p: string; n: number }[],
): Promise<void> {
  expect(found).toEqual([
    { at: '1990-05-01T00:00:00', p: `${table}_default`, n: 1 },
    { at: '2025-06-30T23:59:59', p: `${table}_2025_06`, n: 2 },
    { at: '2025-07-01T00:00:00', p: `${table}_2025_07`, n: 3 },
    { at: '2026-11-15T10:00:00', p: `${table}_2026_11`, n: 4 },
    { at: '2199-01-01T00:00:00', p: `${table}_default`, n: 5 },
  ]);
  const months = await rows<{ n: number }>(
    db,
    sql`select count(*)::int as n from pg_inherits i join pg_class c on c.oid = i.inhrelid
        where i.inhparent = ${table}::regclass and c.relname ~ ${`^${table}_[0-9]{4}_[0-9]{2}$`}`,
  );
  const [span] = await rows<{ n: number }>(
    db,
    sql`select (extract(year from age(date_trunc('month', now() at time zone 'UTC'), '2025-06-01')) * 12
          + extract(month from age(date_trunc('month', now() at time zone 'UTC'), '2025-06-01')))::int + 3 as n`,
  );
  expect(months[0]?.n).toBe(span?.n);
}

/** Outcomes whose canaries' deadlines are these instants, in a database made before migration 0023. */
const DEADLINES_BEFORE_0023 = EVENTS_BEFORE_0022;
const insertOldOutcomes = `
  insert into probes (id, public_key, country, asn, software_version)
    values ('00000000-0000-4000-8000-000000000001', 'k', 'US', 1, '0');
  insert into accounts (id, probe_id, platform, handle, region, adapter_name, adapter_version, state)
    values ('00000000-0000-4000-8000-000000000002', '00000000-0000-4000-8000-000000000001', 'testbed', 'a',
      'US', 'testbed', '0', 'active'),
    ('00000000-0000-4000-8000-000000000003', '00000000-0000-4000-8000-000000000001', 'testbed', 'b',
      'US', 'testbed', '0', 'active');
  insert into campaigns (id, name, mode, term_list_ids, conversation_selection, cadence_cron, deadline_seconds,
    term_sets_per_round, seed)
    values ('00000000-0000-4000-8000-000000000004', 'c', 'monitor', '{}', '{}', '* * * * *', 60, 1, 's');
  insert into conversations (id, platform, ref, kind)
    values ('00000000-0000-4000-8000-000000000005', 'testbed', 'g', 'group');
  insert into canaries (id, campaign_id, kind, pair_id, term_set, carried_terms, text, nonce, sender_account_id,
    conversation_id, send_at, deadline_at, template_id, template_version, seed)
  select gen_random_uuid(), '00000000-0000-4000-8000-000000000004', 'test', gen_random_uuid(), '{t}', '{t}',
    'text ' || n, 'nonce' || n, '00000000-0000-4000-8000-000000000002', '00000000-0000-4000-8000-000000000005',
    d - interval '1 minute', d, 'tpl', '1', 's'
  from unnest(array[${DEADLINES_BEFORE_0023.map((t) => `'${t}'::timestamptz`).join(', ')}])
    with ordinality as t(d, n);
  insert into outcomes (canary_id, recipient_account_id, status, deadline_at, latency_ms, data_format_version)
  select id, '00000000-0000-4000-8000-000000000003', 'delivered',
    -- one outcome holds a copy of its canary's deadline a microsecond off (a lossy copy)
    deadline_at + case when text = 'text 3' then interval '1 microsecond' else interval '0' end,
    substring(text from 6)::int, 1
  from canaries`;

/** After 0023: every outcome kept, each in the partition of its deadline's month (or the default). */
async function expectOutcomesInTheirMonths(db: Db): Promise<void> {
  const found = await rows<{ at: string; p: string; n: number }>(
    db,
    sql`select to_char(o.deadline_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS') as at,
          o.tableoid::regclass::text as p, o.latency_ms as n
        from outcomes o join canaries c on c.id = o.canary_id and c.deadline_at = o.deadline_at
        order by o.deadline_at`,
  );
  await expectInTheirMonths(db, 'outcomes', found);
  // The foreign key to canaries still cascades, from every partition.
  await db.execute(sql`delete from canaries where text = 'text 4'`);
  const [left] = await rows<{ n: number }>(db, sql`select count(*)::int as n from outcomes`);
  expect(left?.n).toBe(4);
}

/**
 * Makes a database as it was before migration `tag` with `insert`'s rows in it (`seed`
 * migrates it with `folder` and runs the insert), then opens it as the collector does,
 * migrates and runs `check`.
 */
async function migrateThrough(
  tag: string,
  insert: string,
  check: (db: Db) => Promise<void>,
  seed: (folder: string, insert: string) => Promise<void>,
  open: () => Promise<Database>,
): Promise<void> {
  const before = migrationsBefore(tag);
  try {
    await seed(before.folder, insert);
    const database = await open();
    try {
      await database.migrate();
      await check(database.db);
    } finally {
      await database.close();
    }
  } finally {
    before.remove();
  }
}

/** What a partitioning migration keeps, checked on one database kind with `seed` and `open`. */
const PARTITIONING = [
  {
    tag: '0022_events_by_month',
    what: 'migration 0022 (events by month) on a database that holds events',
    it: 'keeps every event and puts each in the partition of its month',
    insert: insertOldEvents,
    check: expectEventsInTheirMonths,
  },
  {
    tag: '0023_outcomes_by_month',
    what: 'migration 0023 (outcomes by month) on a database that holds outcomes',
    it: "keeps every outcome and puts each in the partition of its deadline's month",
    insert: insertOldOutcomes,
    check: expectOutcomesInTheirMonths,
  },
];

for (const m of PARTITIONING) {
  describe(m.what, () => {
    it(`[pglite] ${m.it}`, async () => {
      const dataDir = mkdtempSync(join(tmpdir(), 'sd-partitioning-'));
      try {
        await migrateThrough(
          m.tag,
          m.insert,
          m.check,
          async (folder, insert) => {
            const client = new PGlite(join(dataDir, 'pglite'));
            await migratePglite(drizzlePglite(client), { migrationsFolder: folder });
            await client.exec(insert);
            await client.close();
          },
          () => openDatabase({ dataDir }),
        );
      } finally {
        rmSync(dataDir, { recursive: true, force: true });
      }
    });
  });

  describeOnServer(m.what, (getUrl) => {
    it(m.it, async () => {
      await migrateThrough(
        m.tag,
        m.insert,
        m.check,
        async (folder, insert) => {
          const client = new pg.Client({ connectionString: getUrl() });
          await client.connect();
          try {
            await migrateNodePg(drizzleNodePg(client), { migrationsFolder: folder });
            await client.query(insert);
          } finally {
            await client.end();
          }
        },
        () => openDatabase({ databaseUrl: getUrl(), dataDir: '' }),
      );
    });
  });
}

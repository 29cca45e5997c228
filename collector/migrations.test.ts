import { execFile } from 'node:child_process';
import { cpSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { promisify } from 'node:util';
import { is, sql } from 'drizzle-orm';
import { getTableConfig, IndexedColumn, PgTable } from 'drizzle-orm/pg-core';
import { describe, expect, it } from 'vitest';
import { type Db, MIGRATIONS_FOLDER, rows } from './db/open.ts';
import * as schema from './db/schema.ts';
import { describeEachDb } from './test-support/db.ts';

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

/** The same lines read from the catalogue of a migrated database (schema public). */
async function inDatabase(db: Db): Promise<string[]> {
  const found = await rows<{ line: string }>(
    db,
    sql`select t.relname || ' column ' || a.attname || ' ' || format_type(a.atttypid, a.atttypmod)
          || case when a.attnotnull then ' not null' else '' end as line
        from pg_attribute a join pg_class t on t.oid = a.attrelid join pg_namespace n on n.oid = t.relnamespace
        where n.nspname = 'public' and t.relkind in ('r', 'p') and a.attnum > 0 and not a.attisdropped
      union all
      select t.relname || ' index ' || i.relname || case when x.indisunique then ' unique' else '' end
          || case when x.indisprimary then ' primary' else '' end
          || ' (' || array_to_string(array(
               select coalesce(a.attname, 'expr') from unnest(x.indkey::int2[]) with ordinality k(n, o)
               left join pg_attribute a on a.attrelid = t.oid and a.attnum = k.n order by k.o), ', ') || ')'
          || case when x.indpred is not null then ' partial' else '' end
        from pg_index x join pg_class i on i.oid = x.indexrelid join pg_class t on t.oid = x.indrelid
        join pg_namespace n on n.oid = t.relnamespace where n.nspname = 'public'
      union all
      select t.relname || ' foreign key ' || k.conname
          || ' (' || array_to_string(array(select a.attname from unnest(k.conkey) with ordinality u(n, o)
               join pg_attribute a on a.attrelid = k.conrelid and a.attnum = u.n order by u.o), ', ')
          || ') references ' || r.relname
          || ' (' || array_to_string(array(select a.attname from unnest(k.confkey) with ordinality u(n, o)
               join pg_attribute a on a.attrelid = k.confrelid and a.attnum = u.n order by u.o), ', ') || ')'
        from pg_constraint k join pg_class t on t.oid = k.conrelid join pg_class r on r.oid = k.confrelid
        join pg_namespace n on n.oid = t.relnamespace where n.nspname = 'public' and k.contype = 'f'
      union all
      select t.relname || ' check ' || k.conname
        from pg_constraint k join pg_class t on t.oid = k.conrelid join pg_namespace n on n.oid = t.relnamespace
        where n.nspname = 'public' and k.contype = 'c'`,
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

import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Database, openDatabase, rows } from './open.ts';
import { PGliteWorkerClient } from './pglite-client.ts';

/** The same statements on in-thread PGlite and on the worker: results, types and errors must match. */
describe('PGlite in a worker thread', () => {
  let inThread: Database;
  let worker: Database;
  beforeAll(async () => {
    [inThread, worker] = await Promise.all([
      openDatabase({ dataDir: '', inMemory: true, pgliteThread: 'main' }),
      openDatabase({ dataDir: '', inMemory: true }),
    ]);
    for (const d of [inThread, worker]) {
      await d.db.execute(sql`create table t (id int primary key, note text unique, n bigint)`);
    }
  });
  afterAll(async () => {
    await Promise.all([inThread?.close(), worker?.close()]);
  });

  const typed = sql`select now()::timestamptz as ts, '2026-12-01'::date as d, 9007199254740993::bigint as big,
      '{"a":[1,{"b":null}],"c":"六四"}'::jsonb as j, array[1,2,3]::int[] as ints, array['x', null, 'z']::text[] as texts,
      '\\x00ff10'::bytea as bytes, 1.5::numeric as num, array[1.5, 2]::numeric[] as nums, interval '1 hour' as iv,
      array[now()]::timestamptz[] as tss, true as b, null::int as nothing, ${new Date('2026-01-02T03:04:05.678Z')}::timestamptz as param_ts,
      ${JSON.stringify({ k: [1, 2] })}::jsonb as param_j, ${'{4,5}'}::int[] as param_ints`;

  it('returns the same values and types as in-thread PGlite (dates, bigint, jsonb, arrays, bytea)', async () => {
    const [a] = await rows<Record<string, unknown>>(inThread.db, typed);
    const [b] = await rows<Record<string, unknown>>(worker.db, typed);
    expect(Object.keys(b ?? {})).toEqual(Object.keys(a ?? {}));
    for (const k of Object.keys(a ?? {})) {
      if (k === 'ts' || k === 'tss') continue; // now() differs between the two databases
      expect(b?.[k], k).toEqual(a?.[k]);
      expect(Object.prototype.toString.call(b?.[k]), k).toBe(Object.prototype.toString.call(a?.[k]));
    }
    expect(typeof b?.ts).toBe(typeof a?.ts);
    expect(typeof b?.big).toBe('bigint');
    expect(b?.bytes).toBeInstanceOf(Uint8Array);
  });

  it('rebuilds Postgres errors with their code, detail and constraint', async () => {
    const fail = async (d: Database) => {
      await d.db.execute(sql`insert into t (id, note) values (1, 'one') on conflict do nothing`);
      return d.db.execute(sql`insert into t (id, note) values (2, 'one')`).then(
        () => undefined,
        (err: { cause?: Record<string, unknown> }) => err,
      );
    };
    const [a, b] = [await fail(inThread), await fail(worker)];
    expect(b?.constructor.name).toBe(a?.constructor.name);
    expect(b?.cause?.constructor.name).toBe(a?.cause?.constructor.name);
    for (const k of ['code', 'detail', 'constraint', 'table', 'severity', 'message']) {
      expect(b?.cause?.[k], k).toEqual(a?.cause?.[k]);
    }
    expect(b?.cause?.code).toBe('23505');
  });

  it('holds one connection per transaction: concurrent transactions never interleave', async () => {
    const log: string[] = [];
    const run = (name: string) =>
      worker.db.transaction(async (tx) => {
        log.push(`${name} begin`);
        for (let i = 0; i < 5; i++) {
          await tx.execute(sql`select pg_sleep(0.002)`);
          log.push(`${name} ${i}`);
        }
        await tx.execute(sql`insert into t (id, note) values (${name === 'a' ? 10 : 11}, ${name})`);
        log.push(`${name} end`);
      });
    const outside = worker.db.execute(sql`select count(*) from t`).then(() => log.push('outside'));
    await Promise.all([run('a'), run('b'), outside]);
    const a = log.filter((l) => l.startsWith('a'));
    const b = log.filter((l) => l.startsWith('b'));
    const firstB = log.indexOf('b begin');
    const firstA = log.indexOf('a begin');
    // whichever began first ran to its end before the other began
    if (firstA < firstB) expect(log.indexOf('a end')).toBeLessThan(firstB);
    else expect(log.indexOf('b end')).toBeLessThan(firstA);
    expect(a).toHaveLength(7);
    expect(b).toHaveLength(7);
  });

  it('rolls a transaction back when its callback throws, savepoints included', async () => {
    await expect(
      worker.db.transaction(async (tx) => {
        await tx.execute(sql`insert into t (id, note) values (20, 'rolled back')`);
        throw new Error('boom');
      }),
    ).rejects.toThrow('boom');
    await worker.db.transaction(async (tx) => {
      await tx.execute(sql`insert into t (id, note) values (21, 'kept')`);
      await tx
        .transaction(async (inner) => {
          await inner.execute(sql`insert into t (id, note) values (22, 'inner')`);
          throw new Error('inner');
        })
        .catch(() => {});
    });
    const ids = await rows<{ id: number }>(
      worker.db,
      sql`select id from t where id between 20 and 22 order by id`,
    );
    expect(ids.map((r) => r.id)).toEqual([21]);
  });

  it('a failed statement inside a transaction aborts it and the error reaches the caller', async () => {
    await expect(
      worker.db.transaction(async (tx) => {
        await tx.execute(sql`insert into t (id, note) values (30, 'x')`);
        await tx.execute(sql`insert into t (id, note) values (30, 'y')`);
      }),
    ).rejects.toMatchObject({ cause: { code: '23505' } });
    expect(await rows(worker.db, sql`select id from t where id = 30`)).toEqual([]);
    // the connection is usable afterwards
    expect(await rows(worker.db, sql`select 1 as one`)).toEqual([{ one: 1 }]);
  });

  it('refuses a result over the size bound with SQLSTATE 54000 instead of copying it', async () => {
    const small = await PGliteWorkerClient.start({ maxResultBytes: 100_000 });
    try {
      await expect(small.query(`select repeat('x', 200000) as big`)).rejects.toMatchObject({ code: '54000' });
      expect((await small.query<{ ok: number }>('select 1 as ok')).rows).toEqual([{ ok: 1 }]);
    } finally {
      await small.close();
    }
  });

  it('keeps the event loop free while a query runs', async () => {
    let ticks = 0;
    const timer = setInterval(() => ticks++, 10);
    const started = Date.now();
    await worker.db.execute(sql`select count(*) from generate_series(1, 500000)`);
    const elapsed = Date.now() - started;
    clearInterval(timer);
    // a blocked loop would tick at most once, after the query
    expect(ticks).toBeGreaterThan(Math.min(5, elapsed / 40));
  });

  it('says why a data folder cannot be opened, where PGlite throws a bare file-system errno', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'sd-pglite-file-'));
    try {
      const file = join(dir, 'pglite');
      await writeFile(file, 'not a folder');
      // PGlite throws Emscripten's ErrnoError here: a plain object { name, errno: 54 }, no message.
      const err = await PGliteWorkerClient.start({ dataDir: file }).then(
        () => undefined,
        (e: unknown) => e as Error,
      );
      expect(err).toBeInstanceOf(Error);
      expect(err?.message).toContain('ENOTDIR: not a directory');
      expect(err?.message).not.toContain('[object Object]');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

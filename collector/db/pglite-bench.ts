/**
 * The measurements of `npm run bench:pglite-worker` (bench/pglite-worker.ts, decision 013):
 * the same statements through drizzle on in-thread PGlite and on the worker thread. Here
 * because only collector/db/ builds queries.
 */
import { sql } from 'drizzle-orm';
import { type Database, openDatabase } from './open.ts';

export interface PgliteMeasurement {
  openMs: number;
  /** Milliseconds per statement name. */
  out: Record<string, { median: number; p95: number }>;
  slowMs: number;
  maxLoopDelayMs: number;
}

interface Case {
  name: string;
  run(d: Database, i: number): Promise<unknown>;
}

export const BENCH_CASES: Case[] = [
  { name: 'select 1', run: (d) => d.db.execute(sql`select 1`) },
  {
    name: 'insert one row (params)',
    run: (d, i) => d.db.execute(sql`insert into b (id, note, at) values (${i}, ${`note ${i}`}, now())`),
  },
  { name: 'select 100 rows', run: (d) => d.db.execute(sql`select * from b order by id limit 100`) },
  {
    name: 'transaction, 3 statements',
    run: (d, i) =>
      d.db.transaction(async (tx) => {
        await tx.execute(sql`select id from b where id = ${i}`);
        await tx.execute(sql`update b set note = ${`tx ${i}`} where id = ${i}`);
        await tx.execute(sql`select count(*) from b`);
      }),
  },
];

function quantile(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? Number.NaN;
}

/** Round trips of each statement (`n` times) and the event loop's longest stall during a slow one. */
export async function measurePglite(mode: 'main' | 'worker', n: number): Promise<PgliteMeasurement> {
  const opened = performance.now();
  const d = await openDatabase({ dataDir: '', inMemory: true, pgliteThread: mode });
  const openMs = performance.now() - opened;
  await d.db.execute(sql`create table b (id int primary key, note text, at timestamptz)`);
  const out: PgliteMeasurement['out'] = {};
  for (const c of BENCH_CASES) {
    for (let i = 0; i < 20; i++) await c.run(d, n + 1000 + i); // warm-up
    const times: number[] = [];
    for (let i = 0; i < n; i++) {
      const t = performance.now();
      await c.run(d, i);
      times.push(performance.now() - t);
    }
    times.sort((a, b) => a - b);
    out[c.name] = { median: quantile(times, 0.5), p95: quantile(times, 0.95) };
  }
  // One slow statement: how long the event loop is blocked while it runs.
  let last = performance.now();
  let maxGap = 0;
  const timer = setInterval(() => {
    const now = performance.now();
    maxGap = Math.max(maxGap, now - last);
    last = now;
  }, 5);
  const t = performance.now();
  await d.db.execute(sql`select count(*) from generate_series(1, 2000000)`);
  const slowMs = performance.now() - t;
  clearInterval(timer);
  maxGap = Math.max(maxGap, performance.now() - last);
  await d.close();
  return { openMs, out, slowMs, maxLoopDelayMs: maxGap };
}

/**
 * What bench/storage.ts reads of a Postgres server: per table, its rows and its bytes on disk
 * (heap, TOAST and indexes: `pg_total_relation_size`, summed over a partitioned table's
 * partitions). Benchmark support only; the collector
 * never calls it.
 */
import pg from 'pg';

export interface TableFootprint {
  table: string;
  rows: number;
  /** Heap + TOAST + every index. */
  totalBytes: number;
  indexBytes: number;
}

const NAME = /^[a-z_]+$/;

export async function tableFootprints(url: string, tables: readonly string[]): Promise<TableFootprint[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    // Visibility map and free space as after autovacuum: sizes are of live rows, not of dead ones.
    await client.query(`vacuum (analyze) ${tables.filter((t) => NAME.test(t)).join(', ')}`);
    const out: TableFootprint[] = [];
    for (const table of tables) {
      if (!NAME.test(table)) throw new Error(`not a table name: ${table}`);
      const { rows } = await client.query<{ rows: string; total: string; indexes: string }>(
        // A partitioned table (events, decision 039) has no storage of its own: its
        // partitions' sizes are summed (pg_partition_tree lists nothing for a plain table).
        `select (select count(*) from ${table}) as rows,
                coalesce((select sum(pg_total_relation_size(relid)) from pg_partition_tree($1)),
                  pg_total_relation_size($1)) as total,
                coalesce((select sum(pg_indexes_size(relid)) from pg_partition_tree($1)),
                  pg_indexes_size($1)) as indexes`,
        [table],
      );
      const r = rows[0];
      out.push({
        table,
        rows: Number(r?.rows ?? 0),
        totalBytes: Number(r?.total ?? 0),
        indexBytes: Number(r?.indexes ?? 0),
      });
    }
    return out;
  } finally {
    await client.end();
  }
}

/** Canaries whose deadline had passed at `at`: the ones whose events and outcomes were all in. */
export async function canariesPastDeadline(url: string, at: Date): Promise<number> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const { rows } = await client.query<{ n: string }>(
      'select count(*) as n from canaries where deadline_at < $1',
      [at.toISOString()],
    );
    return Number(rows[0]?.n ?? 0);
  } finally {
    await client.end();
  }
}

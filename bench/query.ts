/**
 * Research queries on synthetic outcomes, each against the naive query on the same data
 * (issue 14):
 *
 *   BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres npm run bench:query            # 1M outcomes
 *   BENCH_DATABASE_URL=… npm run bench:query -- --full                                            # 50M outcomes
 *   BENCH_DATABASE_URL=… npm run bench:query -- --outcomes 200000 --runs 9 --no-export
 *
 * A scratch database on the server is created, migrated and seeded in SQL
 * (collector/db/query-bench.ts: 4 campaigns, 4 regions, 20 conversations, `--days` of send
 * times), the rollups are built by the collector's own job, and then per query: the median
 * of the naive query (`countByAxesRaw`: the aggregation over outcomes as it was; the outcome
 * page without the keyset bound on c.send_at) and of the current one (what the route calls
 * now), their ratio, whether both gave the same counts, and where the current one's time
 * goes: over HTTP (app.inject, the whole route), in the repository call, and the CPU of the
 * Postgres backends per call (read from /proc, so only with the server on this machine).
 * Exports: rows/s of GET /api/v1/export over HTTP (a client reading as fast as it can)
 * against COPY (the same select) TO STDOUT on the same data; then on PGlite (`--pglite-outcomes`,
 * 0 skips it) against one plain select of the same lines.
 * `--export-only` skips the rollups and the queries. The scratch database is dropped at the end (`--keep` keeps it and prints its URL).
 * `--database NAME` measures a database an earlier `--keep` run left on the same server again,
 * without seeding it (the rollup job runs to catch up; the database is kept); `--naive-runs 0`
 * skips the naive queries (minutes each at 50M outcomes).
 */
import { request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { parseArgs } from 'node:util';
import { buildApp } from '../collector/app.ts';
import { createScratchDatabase, keptScratchDatabase } from '../collector/db/ingest-bench.ts';
import { openDatabase } from '../collector/db/open.ts';
import {
  analyzeAll,
  copyExport,
  countOutcomes,
  keyAt,
  middleDay,
  naiveOutcomePage,
  rollupRowCounts,
  seededCampaigns,
  seedOutcomes,
  selectExportLines,
} from '../collector/db/query-bench.ts';
import {
  countByAxes,
  countByAxesRaw,
  countByTermSet,
  countByTermSetRaw,
  type GroupedCounts,
  type LatencyCounts,
  latencyHistogram,
  latencyHistogramRaw,
  type TermSetCounts,
} from '../collector/db/research-aggregation.ts';
import type { OutcomeFilter } from '../collector/db/research-filters.ts';
import { readOutcomes } from '../collector/db/research-outcomes.ts';
import { rollUpOutcomes } from '../collector/db/rollups.ts';
import { rollUpTermSets, termSetRollupRows } from '../collector/db/term-set-rollups.ts';
import { createLogger } from '../collector/logger.ts';

import { encodeOutcomeCursor, researchReader } from '../collector/routes/research-query.ts';
import { TEST_ADMIN_TOKEN, TEST_HASH_KEY } from '../collector/test-support/probe.ts';
import { type AggregationAxis, LATENCY_BIN_EDGES_MS } from '../protocol/research.ts';

const { values } = parseArgs({
  options: {
    full: { type: 'boolean', default: false },
    outcomes: { type: 'string' },
    days: { type: 'string', default: '30' },
    runs: { type: 'string', default: '7' },
    'naive-runs': { type: 'string' },
    'no-export': { type: 'boolean', default: false },
    'export-only': { type: 'boolean', default: false },
    'pglite-outcomes': { type: 'string', default: '200000' },
    keep: { type: 'boolean', default: false },
    database: { type: 'string' },
  },
});
const outcomes = Number(values.outcomes ?? (values.full ? 50_000_000 : 1_000_000));
const days = Number(values.days);
const pgliteOutcomes = Number(values['pglite-outcomes']);
const runs = Number(values.runs);
const naiveRuns = Number(values['naive-runs'] ?? (values.full ? 1 : 3));
if (!Number.isInteger(outcomes) || outcomes < 1000) throw new Error('--outcomes: an integer ≥ 1000');
if (!(days > 0) || !Number.isInteger(runs) || runs < 1) throw new Error('--days > 0, --runs ≥ 1');
if (!Number.isInteger(naiveRuns) || naiveRuns < 0) throw new Error('--naive-runs ≥ 0');
const base = process.env.BENCH_DATABASE_URL ?? process.env.DATABASE_URL;
if (!base)
  throw new Error('BENCH_DATABASE_URL: a Postgres server and a database to create scratch databases from');

const out = (s: string) => process.stdout.write(`${s}\n`);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? Number.NaN;
const fmt = (ms: number) =>
  ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${ms.toFixed(ms < 10 ? 2 : 1)} ms`;

async function timeIt(n: number, f: () => Promise<unknown>): Promise<number[]> {
  const times: number[] = [];
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    await f();
    times.push(performance.now() - t);
  }
  return times;
}

const counts = (rs: GroupedCounts[]) =>
  JSON.stringify(
    rs.map((r) => [r.k, r.delivered, r.delayed, r.missing, r.altered, r.rejected, r.failed, r.pending]),
  );

const kept = values.database;
const scratch = kept
  ? await keptScratchDatabase(base, kept)
  : await createScratchDatabase(base, 'sd_bench_query');
const database = await openDatabase({ databaseUrl: scratch.url, dataDir: '', poolSize: 4 });
try {
  await database.migrate();
  const { db } = database;
  let t = performance.now();
  if (kept) {
    out(
      `Postgres server (${scratch.name}, kept by an earlier run): ${(await countOutcomes(db)).toLocaleString('en')} outcomes`,
    );
  } else {
    out(
      `Postgres server (${scratch.name}): seeding ~${outcomes.toLocaleString('en')} outcomes over ${days} days`,
    );
    const made = await seedOutcomes(db, { outcomes, days });
    await analyzeAll(db);
    out(`  seeded ${made.toLocaleString('en')} outcomes in ${fmt(performance.now() - t)}`);
  }
  t = performance.now();
  const run = values['export-only'] ? { cells: 0 } : await rollUpOutcomes(db);
  await analyzeAll(db);
  out(
    `  rollups built by the job in ${fmt(performance.now() - t)} (${run.cells.toLocaleString('en')} minute cells)`,
  );
  const rollupRows = await countRollupRows();
  out(`  rollup rows: ${rollupRows}`);
  if (!values['export-only']) {
    t = performance.now();
    const termSetRun = await rollUpTermSets(db);
    await analyzeAll(db);
    const stored = await termSetRollupRows(db);
    out(
      `  term-set rollups built by their job in ${fmt(performance.now() - t)} (${termSetRun.advanced} campaigns, ${stored.all.toLocaleString('en')} rows, ${stored.hourly.toLocaleString('en')} hourly, ${stored.quarterly.toLocaleString('en')} by quarter day, ${stored.daily.toLocaleString('en')} daily)`,
    );
  }

  const unlimited = { max: 1e9, timeWindowMs: 60_000 };
  const app = await buildApp({
    db,
    config: { adminToken: TEST_ADMIN_TOKEN, hashKey: TEST_HASH_KEY, checkinIntervalMs: 60_000 },
    logger: createLogger({ level: 'silent' }),
    rateLimit: unlimited,
    probeRateLimit: unlimited,
    adminRateLimit: unlimited,
    authFailureLimit: unlimited,
  });
  const get = async (url: string) => {
    const res = await app.inject({ method: 'GET', url });
    if (res.statusCode !== 200) throw new Error(`${url}: ${res.statusCode} ${res.body.slice(0, 200)}`);
    return res.body;
  };

  // Every query as the routes run them: in a read-only transaction under the statement timeout.
  const read = researchReader(db, 3_600_000);
  const [campaign] = await seededCampaigns(db);
  const key = await keyAt(db, 0.8);
  const agg = (name: string, filter: OutcomeFilter, axes: AggregationAxis[], query: string) => ({
    name,
    naive: () => read((q) => countByAxesRaw(q, filter, axes)),
    current: () => read((q) => countByAxes(q, filter, axes)),
    same: async () =>
      counts(await read((q) => countByAxesRaw(q, filter, axes))) ===
      counts(await read((q) => countByAxes(q, filter, axes))),
    http: `/api/v1/aggregation?group_by=${axes.join(',')}${query}`,
  });
  // /latency: `same` compares the bins and n (the quantiles are within 9.05 %, decision 032).
  const binsOf = (series: LatencyCounts[]) => JSON.stringify(series.map((s) => [s.kind, s.n, s.counts]));
  const latency = (name: string, filter: OutcomeFilter, query: string) => ({
    name,
    naive: () => read((q) => latencyHistogramRaw(q, filter, LATENCY_BIN_EDGES_MS)),
    current: () => read((q) => latencyHistogram(q, filter)),
    same: async () =>
      binsOf(await read((q) => latencyHistogramRaw(q, filter, LATENCY_BIN_EDGES_MS))) ===
      binsOf((await read((q) => latencyHistogram(q, filter))).series),
    http: `/api/v1/latency${query}`,
  });
  // /term-sets: `same` compares every row's counts and first/last send, order aside (quantiles within 9.05 %).
  const listOf = (rows: TermSetCounts[]) =>
    JSON.stringify(
      rows
        .map((r) =>
          JSON.stringify([
            r.term_set,
            r.kind,
            r.delivered,
            r.delayed,
            r.missing,
            r.altered,
            r.rejected,
            r.failed,
            r.pending,
            r.first_sent_at,
            r.last_sent_at,
          ]),
        )
        .sort(),
    );
  const termSets = (name: string, filter: OutcomeFilter, query: string) => ({
    name,
    naive: () => read((q) => countByTermSetRaw(q, filter, 5000)),
    current: () => read((q) => countByTermSet(q, filter, 5000)),
    same: async () =>
      listOf(await read((q) => countByTermSetRaw(q, filter, 5000))) ===
      listOf((await read((q) => countByTermSet(q, filter, 5000))).counts),
    http: `/api/v1/term-sets${query}`,
  });
  const TERM_SET = ['term 7'];
  const terms = encodeURIComponent(JSON.stringify(TERM_SET));
  const weekTo = new Date(Math.floor((Date.now() - 2 * 86_400_000) / 60_000) * 60_000);
  const weekFrom = new Date(weekTo.getTime() - 7 * 86_400_000);
  // the terms view asks for the whole UTC hours the filter bar's range touches (decision 037)
  const hourFrom = new Date(Math.floor(weekFrom.getTime() / 3_600_000) * 3_600_000);
  const hourTo = new Date(Math.ceil(weekTo.getTime() / 3_600_000) * 3_600_000);
  const cases: {
    name: string;
    current: () => Promise<unknown>;
    naive?: () => Promise<unknown>;
    same?: () => Promise<boolean>;
    http: string;
  }[] = [
    agg('aggregation hour × kind, all (dashboard, hour grain)', {}, ['hour', 'kind'], ''),
    agg('aggregation day × kind, all (dashboard default)', {}, ['day', 'kind'], ''),
    agg('aggregation hour × kind, one campaign', { campaign }, ['hour', 'kind'], `&campaign=${campaign}`),
    agg(
      'aggregation sender × recipient region, tests in groups (regions view)',
      { kind: 'test', conversationKind: 'group' },
      ['sender_region', 'recipient_region'],
      '&kind=test&conversation_kind=group',
    ),
    agg('aggregation by campaign (filter bar)', {}, ['campaign'], ''),
    agg('aggregation by recipient region (filter bar)', {}, ['recipient_region'], ''),
    latency('latency histogram and quantiles, all (latency view)', {}, ''),
    latency('latency histogram and quantiles, one campaign', { campaign }, `?campaign=${campaign}`),
    termSets('term-set list, all (terms view)', {}, ''),
    termSets('term-set list, one campaign', { campaign }, `?campaign=${campaign}`),
    termSets(
      'term-set list, a week off the hour (API, a range on the minute)',
      { from: weekFrom, to: weekTo },
      `?from=${weekFrom.toISOString()}&to=${weekTo.toISOString()}`,
    ),
    termSets(
      'term-set list, that week in whole hours (terms view, filter bar range)',
      { from: hourFrom, to: hourTo },
      `?from=${hourFrom.toISOString()}&to=${hourTo.toISOString()}`,
    ),
    // The terms view's detail of one term set (dashboard/src/views/terms.ts): its timeline, from
    // the hour rows (decisions 035, 037), and its latest outcomes.
    agg(
      'terms view detail: one term set, hour × kind',
      { termSet: TERM_SET },
      ['hour', 'kind'],
      `&terms=${terms}`,
    ),
    // the same within a week, two days back: on the minute (the API), in whole hours (the view)
    agg(
      'terms view detail: one term set, hour × kind, a week off the hour',
      { termSet: TERM_SET, from: weekFrom, to: weekTo },
      ['hour', 'kind'],
      `&terms=${terms}&from=${weekFrom.toISOString()}&to=${weekTo.toISOString()}`,
    ),
    agg(
      'terms view detail: one term set, hour × kind, that week in whole hours',
      { termSet: TERM_SET, from: hourFrom, to: hourTo },
      ['hour', 'kind'],
      `&terms=${terms}&from=${hourFrom.toISOString()}&to=${hourTo.toISOString()}`,
    ),
    {
      name: 'terms view detail: latest 50 outcomes of one term set',
      current: () => read((q) => readOutcomes(q, { termSet: TERM_SET }, { order: 'desc', limit: 51 })),
      http: `/api/v1/outcomes?terms=${terms}&limit=50&order=desc`,
    },
    {
      name: 'outcomes page of 100, 80 % in (keyset)',
      naive: () => read((q) => naiveOutcomePage(q, key, 101)),
      current: () => read((q) => readOutcomes(q, {}, { after: key, order: 'asc', limit: 101 })),
      same: async () =>
        JSON.stringify(await read((q) => naiveOutcomePage(q, key, 101))) ===
        JSON.stringify(await read((q) => readOutcomes(q, {}, { after: key, order: 'asc', limit: 101 }))),
      http: `/api/v1/outcomes?limit=100&cursor=${encodeOutcomeCursor(key, 'asc')}`,
    },
  ];

  out(
    `\nmedians: current ${runs} runs, naive ${naiveRuns}; Postgres CPU: the backends' CPU per current call`,
  );
  out(
    `${'query'.padEnd(72)}${'naive'.padStart(10)}${'current'.padStart(10)}${'ratio'.padStart(9)}${'same'.padStart(6)}${'HTTP'.padStart(10)}${'Postgres CPU'.padStart(14)}`,
  );
  for (const c of values['export-only'] ? [] : cases) {
    await c.current();
    const pg0 = await scratch.backendCpuMs();
    const cur = median(await timeIt(runs, c.current));
    const pg1 = await scratch.backendCpuMs();
    await get(c.http);
    const http = median(await timeIt(runs, () => get(c.http)));
    const naive = naiveRuns > 0 && c.naive ? median(await timeIt(naiveRuns, c.naive)) : undefined;
    const same = naiveRuns > 0 && c.same ? ((await c.same()) ? 'yes' : 'NO') : '—';
    const pgCpu = pg0 !== null && pg1 !== null ? fmt((pg1 - pg0) / runs) : '—';
    out(
      `${c.name.padEnd(72)}${(naive === undefined ? '—' : fmt(naive)).padStart(10)}${fmt(cur).padStart(10)}${(naive === undefined ? '—' : `${(naive / cur).toFixed(0)}×`).padStart(9)}${same.padStart(6)}${fmt(http).padStart(10)}${pgCpu.padStart(14)}`,
    );
  }

  if (!values['no-export']) {
    out(
      `\nexport over HTTP (GET /api/v1/export, NDJSON, to a reading client) against COPY (the same select) TO STDOUT`,
    );
    out(
      `${'rows'.padEnd(40)}${'export rows/s'.padStart(15)}${'COPY rows/s'.padStart(14)}${'ratio'.padStart(8)}`,
    );
    await app.listen({ port: 0, host: '127.0.0.1' });
    const origin = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
    const day = await middleDay(db);
    const windows: [string, { campaign?: string; from?: Date; to?: Date }][] = [
      ['one campaign', { campaign }],
      [`one day of ${days} (from/to)`, day],
      ['all', {}],
    ];
    for (const [name, filter] of windows) {
      const query = new URLSearchParams();
      if (filter.campaign) query.set('campaign', filter.campaign);
      if (filter.from) query.set('from', filter.from.toISOString());
      if (filter.to) query.set('to', filter.to.toISOString());
      const exported = await httpExport(`${origin}/api/v1/export?${query}`);
      const copy = await copyExport(scratch.url, filter);
      const exportRate = exported.rows / exported.s;
      const copyRate = copy.rows / copy.s;
      if (exported.rows !== copy.rows) out(`  (rows differ: export ${exported.rows}, COPY ${copy.rows})`);
      out(
        `${`${name} (${exported.rows.toLocaleString('en')} rows)`.padEnd(40)}${exportRate.toFixed(0).padStart(15)}${copyRate.toFixed(0).padStart(14)}${(exportRate / copyRate).toFixed(2).padStart(8)}`,
      );
    }
  }
  await app.close();
} finally {
  await database.close();
  // a kept database's `drop` only lets it go (keptScratchDatabase)
  if (values.keep && !kept) {
    out(`kept: ${scratch.url}`);
    // an open admin connection kept the process from ending
    await scratch.release();
  } else await scratch.drop();
}

if (!values['no-export'] && pgliteOutcomes > 0) await pgliteExport();

/**
 * PGlite (no COPY to a socket: windows of the send-time key, decision 026): the export of one
 * campaign, and of one day, over HTTP against one plain select of the same lines in the same worker.
 */
async function pgliteExport(): Promise<void> {
  const embedded = await openDatabase({ dataDir: '', inMemory: true });
  try {
    await embedded.migrate();
    out(`\nPGlite (in memory, worker thread): seeding ~${pgliteOutcomes.toLocaleString('en')} outcomes`);
    await seedOutcomes(embedded.db, { outcomes: pgliteOutcomes, days });
    await analyzeAll(embedded.db);
    const [campaign] = await seededCampaigns(embedded.db);
    const unlimited = { max: 1e9, timeWindowMs: 60_000 };
    const app = await buildApp({
      db: embedded.db,
      config: { adminToken: TEST_ADMIN_TOKEN, hashKey: TEST_HASH_KEY, checkinIntervalMs: 60_000 },
      logger: createLogger({ level: 'silent' }),
      rateLimit: unlimited,
    });
    await app.listen({ port: 0, host: '127.0.0.1' });
    try {
      const origin = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
      out(
        `${'rows'.padEnd(40)}${'export rows/s'.padStart(15)}${'select rows/s'.padStart(14)}${'ratio'.padStart(8)}`,
      );
      const day = await middleDay(embedded.db);
      const windows: [string, string, { campaign?: string; from?: Date; to?: Date }][] = [
        ['one campaign', `campaign=${campaign}`, { campaign }],
        [`one day of ${days} (from/to)`, `from=${day.from.toISOString()}&to=${day.to.toISOString()}`, day],
      ];
      for (const [name, query, filter] of windows) {
        const exported = await httpExport(`${origin}/api/v1/export?${query}`);
        const t0 = performance.now();
        const all = await selectExportLines(embedded.db, filter);
        const selectS = (performance.now() - t0) / 1000;
        const exportRate = exported.rows / exported.s;
        const selectRate = all / selectS;
        out(
          `${`${name} (${exported.rows.toLocaleString('en')} rows)`.padEnd(40)}${exportRate.toFixed(0).padStart(15)}${selectRate.toFixed(0).padStart(14)}${(exportRate / selectRate).toFixed(2).padStart(8)}`,
        );
      }
    } finally {
      await app.close();
    }
  } finally {
    await embedded.close();
  }
}

/** GET an export with a client that reads as fast as it can; lines and seconds. */
function httpExport(url: string): Promise<{ rows: number; s: number }> {
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    request(url, (res) => {
      if (res.statusCode !== 200) reject(new Error(`${url}: ${res.statusCode}`));
      let lines = 0;
      res.on('data', (chunk: Buffer) => {
        for (let i = chunk.indexOf(10); i !== -1; i = chunk.indexOf(10, i + 1)) lines++;
      });
      res.on('end', () => {
        if (!res.complete) reject(new Error(`${url}: the export was cut`));
        resolve({ rows: lines, s: (performance.now() - t0) / 1000 });
      });
      res.on('error', reject);
    })
      .on('error', reject)
      .end();
  });
}

async function countRollupRows(): Promise<string> {
  const found = await rollupRowCounts(database.db);
  return found.map((r) => `${r.grain} ${r.n.toLocaleString('en')}`).join(', ');
}

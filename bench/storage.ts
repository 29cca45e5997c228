/**
 * How fast the growing tables grow (docs/scale.md): a real local network — collector on the
 * Postgres server, testbed, one probe per region, accounts in direct chats and a group — runs
 * a monitor campaign for a while; then, per table, the rows and the bytes on disk (heap,
 * TOAST and indexes) per row and per canary, and from those the growth per account per day
 * at a given cadence.
 *
 *   BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres npm run bench:storage
 *   npm run bench:storage -- --minutes 5 --every 300 --accounts 4
 *
 * --minutes: how long the network runs (default 2). --every: the cadence to project for, a
 * canary per account every N seconds (default 300), --accounts: accounts per probe (default 4).
 * The run itself sends a round every 4 s so that a short run yields enough rows. A scratch
 * database is created on the server and dropped afterwards.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { startLocalNetwork } from '../cli/local/network.ts';
import { createScratchDatabase } from '../collector/db/ingest-bench.ts';
import { canariesPastDeadline, tableFootprints } from '../collector/db/storage-bench.ts';

const { values } = parseArgs({
  options: {
    minutes: { type: 'string', default: '2' },
    every: { type: 'string', default: '300' },
    accounts: { type: 'string', default: '4' },
  },
});
const minutes = Number(values.minutes);
const everyS = Number(values.every);
const accountsPerProbe = Number(values.accounts);
if (!(minutes > 0) || !(everyS > 0) || !(accountsPerProbe > 0))
  throw new Error('--minutes, --every, --accounts: positive numbers');
const base = process.env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

const out = (s: string) => process.stdout.write(`${s}\n`);
const TABLES = ['canaries', 'events', 'outcomes', 'rounds', 'findings', 'sequential_states'];
const REGIONS = { CN: 2, US: 2, AU: 2 };
const TERM_SETS = [['六四'], ['图书馆'], ['火车站'], ['音乐会'], ['709', '律师']];

const scratch = await createScratchDatabase(base, 'sd_bench_storage');
const dataDir = mkdtempSync(join(tmpdir(), 'silentdrop-bench-storage-'));
try {
  const net = await startLocalNetwork({
    dataDir,
    policy: {
      regions: Object.keys(REGIONS),
      background: { loss: 0.03 },
      rules: [{ id: 'june4', match: { any: ['六四'] }, action: 'drop', scope: { recipient_region: ['CN'] } }],
    },
    termSets: TERM_SETS,
    regions: REGIONS,
    cadence: '*/4 * * * * *',
    deadlineSeconds: 3,
    probeMode: 'in-process',
    campaign: { name: 'storage', mode: 'monitor', termSetsPerRound: TERM_SETS.length, seed: 'bench-storage' },
    collector: { databaseUrl: scratch.url, checkinIntervalMs: 5000, sweepIntervalMs: 2000 },
    probeCheckinCron: '*/2 * * * * *',
    testbed: { seed: 7, rateLimit: false },
    logLevel: 'warn',
  });
  out(
    `network up: ${Object.keys(REGIONS).length} probes, ${net.accounts.length} accounts, ${net.conversations.length} conversations; running ${minutes} min`,
  );
  await new Promise((r) => setTimeout(r, minutes * 60_000));
  const stoppedAt = new Date();
  await net.stop();

  const tables = await tableFootprints(scratch.url, TABLES);
  // Rows per canary over the canaries whose deadline passed before the network stopped (the
  // rounds planned ahead for the next seconds were never sent and have no events).
  const planned = tables.find((t) => t.table === 'canaries')?.rows ?? 0;
  const canaries = await canariesPastDeadline(scratch.url, stoppedAt);
  if (canaries === 0) throw new Error('no canary reached its deadline: run longer');
  out(`${planned} canaries planned, ${canaries} past their deadline (the per-canary figures count these)`);
  out('');
  out('| table | rows | rows per canary | bytes per row (heap+toast+indexes) | of which indexes |');
  out('|---|---:|---:|---:|---:|');
  for (const t of tables) {
    const perRow = t.rows > 0 ? Math.round(t.totalBytes / t.rows) : 0;
    const idx = t.rows > 0 ? Math.round(t.indexBytes / t.rows) : 0;
    const rowsPerCanary = t.table === 'canaries' ? 1 : t.rows / canaries;
    out(`| ${t.table} | ${t.rows} | ${rowsPerCanary.toFixed(2)} | ${perRow} | ${idx} |`);
  }
  // Growth per account per day: canaries scale with the cadence; events and outcomes with the
  // rows per canary measured (recipients per conversation of this network's mix).
  const perDay = 86_400 / everyS;
  out('');
  out(
    `Projected: a canary per account every ${everyS} s (${perDay.toFixed(0)} a day), ${accountsPerProbe} accounts per probe:`,
  );
  out('| table | rows per probe per day | MB per probe per day | GB per 30 probes per year |');
  out('|---|---:|---:|---:|');
  for (const t of tables.filter((x) => ['canaries', 'events', 'outcomes'].includes(x.table))) {
    const rows = (t.table === 'canaries' ? 1 : t.rows / canaries) * perDay * accountsPerProbe;
    const bytes = t.rows > 0 ? (t.totalBytes / t.rows) * rows : 0;
    out(
      `| ${t.table} | ${Math.round(rows)} | ${(bytes / 1e6).toFixed(2)} | ${((bytes * 30 * 365) / 1e9).toFixed(1)} |`,
    );
  }
} finally {
  rmSync(dataDir, { recursive: true, force: true });
  await scratch.drop();
}

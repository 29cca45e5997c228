/**
 * Ingest through the real probe API against a raw bulk load of the same rows into the
 * same table, in one run (issue 14):
 *
 *   npm run bench:ingest                                   # PGlite, 1/4/16 clients
 *   BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres npm run bench:ingest -- --db pg
 *   npm run bench:ingest -- --db pglite,pg --events 60000 --clients 1,4,16
 *   npm run bench:ingest -- --months-kept 1                # only this month's partition
 *
 * `events` is partitioned by month (decision 039); by default the run keeps 13 months as a
 * collector with the default retention (365 days) does, the 12 past ones with
 * `--rows-per-month` rows each (default 50,000), so lookups meet as many partitions as in
 * service.
 *
 * Per database and client count: signed batches of 500 events (`sent` from the sender's
 * probe, `received` from the recipients' probe, so every batch also re-derives outcomes)
 * are posted over HTTP by N concurrent clients to a collector listening in this process.
 * Batches are built and signed before the clock starts, so the process's CPU during the
 * run is the collector's (and the HTTP clients'). Then the same number of rows of the
 * same shape go into the events table by the fastest bulk path of the driver: COPY FROM
 * STDIN on a server; on PGlite `insert … select from unnest(…)` (COPY needs a blob, which
 * cannot cross to PGlite's thread). Printed: events/s, the ratio ingest / bulk, batch
 * p50/p95, and where the time went: this process's CPU and, on a server, the CPU of the
 * Postgres backends serving this database (read from /proc, so only on the same machine);
 * then the CPU the bulk load took (both halves again) and the CPU ratio, bulk CPU / ingest
 * CPU for the same rows: the ratio of the work itself, which a machine busy with other
 * things does not blur as it blurs the wall-clock one (ingest's half includes the HTTP
 * clients', so it is the harsher of the two).
 *
 * Before each run the tables are analysed, as a collector in service has planner statistics
 * (autovacuum; on PGlite the collector's own job).
 *
 * On a server a scratch database is created and dropped (the URL names a maintenance
 * database the role may create databases from).
 */
import { randomUUID } from 'node:crypto';
import { parseArgs } from 'node:util';
import { buildApp } from '../collector/app.ts';
import { findAccounts, findConversationId } from '../collector/db/accounts.ts';
import { insertCanaries } from '../collector/db/canaries.ts';
import { insertEvents } from '../collector/db/events.ts';
import {
  analyzeTables,
  copyEvents,
  createScratchDatabase,
  fillPastMonths,
} from '../collector/db/ingest-bench.ts';
import { type Database, openDatabase } from '../collector/db/open.ts';
import { monthStart } from '../collector/db/partitions.ts';
import { createLogger } from '../collector/logger.ts';
import { signedHeaders, TEST_ADMIN_TOKEN, TEST_HASH_KEY } from '../collector/test-support/probe.ts';
import {
  buildWorld,
  newNonce,
  receivedEvent,
  sentEvent,
  type World,
} from '../collector/test-support/world.ts';

const { values } = parseArgs({
  options: {
    db: { type: 'string', default: 'pglite' },
    events: { type: 'string', default: '30000' },
    clients: { type: 'string', default: '1,4,16' },
    'months-kept': { type: 'string', default: '13' },
    'rows-per-month': { type: 'string', default: '50000' },
  },
});
const targets = values.db.split(',').map((s) => s.trim());
const eventsPerRun = Number(values.events);
const clientCounts = values.clients.split(',').map(Number);
const BATCH = 500;
if (!Number.isInteger(eventsPerRun) || eventsPerRun < BATCH) throw new Error(`--events must be ≥ ${BATCH}`);
if (clientCounts.some((n) => !Number.isInteger(n) || n < 1)) throw new Error('--clients: positive integers');
const monthsKept = Number(values['months-kept']);
const rowsPerMonth = Number(values['rows-per-month']);
if (!Number.isInteger(monthsKept) || monthsKept < 1 || monthsKept > 120)
  throw new Error('--months-kept: an integer from 1 to 120');
if (!Number.isInteger(rowsPerMonth) || rowsPerMonth < 0) throw new Error('--rows-per-month: an integer ≥ 0');
for (const t of targets) if (t !== 'pglite' && t !== 'pg') throw new Error(`--db: pglite or pg, not ${t}`);

const out = (s: string) => process.stdout.write(`${s}\n`);
const median = (xs: number[]) => quantile(xs, 0.5);
function quantile(xs: number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))] ?? Number.NaN;
}
const cpuMs = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};

interface Batch {
  headers: Record<string, string>;
  body: string;
}

/** Canaries for `n` events (one `sent` and two `received` each), stored first. */
async function canariesFor(db: Database['db'], w: World, n: number) {
  const count = Math.ceil(n / 3);
  const now = Date.now();
  const canaries = Array.from({ length: count }, () => {
    const nonce = newNonce();
    return {
      id: randomUUID(),
      nonce,
      text: `今天 天气 很好 ${nonce}`,
      deadlineAt: new Date(now + 3_600_000),
    };
  });
  const conversationId = await findConversationId(db, 'testbed', w.group);
  if (!conversationId) throw new Error('the world has no conversation');
  for (let i = 0; i < canaries.length; i += 1000) {
    await insertCanaries(
      db,
      canaries.slice(i, i + 1000).map((c) => ({
        id: c.id,
        campaignId: w.campaignId,
        roundId: null,
        kind: 'test' as const,
        pairId: randomUUID(),
        termSet: ['天气'],
        carriedTerms: ['天气'],
        text: c.text,
        nonce: c.nonce,
        senderAccountId: w.accountIds.alice,
        conversationId,
        sendAt: new Date(now - 60_000),
        deadlineAt: c.deadlineAt,
        templateId: 'bench',
        templateVersion: '1',
        seed: 'bench',
      })),
    );
  }
  return canaries;
}

/** Signed batches: sends from the US probe, receipts (bob, carol) from the CN probe. */
function batchesFor(w: World, canaries: Awaited<ReturnType<typeof canariesFor>>, n: number): Batch[] {
  const sent = canaries.map((c) => sentEvent(w, c, { at: new Date(Date.now() - 30_000) }));
  const received = canaries.flatMap((c) => [receivedEvent(w, 'bob', c), receivedEvent(w, 'carol', c)]);
  const batches: Batch[] = [];
  const path = '/probe/v1/events';
  const add = (probe: World['us'], events: unknown[]) => {
    for (let i = 0; i < events.length; i += BATCH) {
      const body = JSON.stringify({ protocol: 1, events: events.slice(i, i + BATCH) });
      batches.push({ headers: signedHeaders(probe, path, body), body });
    }
  };
  add(w.us, sent.slice(0, Math.ceil(n / 3)));
  add(w.cn, received.slice(0, n - Math.ceil(n / 3)));
  // Interleave: a sender batch, then the receipts of earlier canaries, as probes would.
  const sends = batches.filter((b) => b.headers['x-sd-probe'] === w.us.id);
  const recvs = batches.filter((b) => b.headers['x-sd-probe'] === w.cn.id);
  const mixed: Batch[] = [];
  while (sends.length || recvs.length) {
    if (sends.length) mixed.push(sends.shift()!);
    for (let k = 0; k < 2 && recvs.length; k++) mixed.push(recvs.shift()!);
  }
  return mixed;
}

async function post(url: string, b: Batch): Promise<void> {
  const res = await fetch(`${url}/probe/v1/events`, { method: 'POST', headers: b.headers, body: b.body });
  const text = await res.text();
  if (res.status !== 200) throw new Error(`ingest answered ${res.status}: ${text.slice(0, 300)}`);
  const results = (JSON.parse(text) as { results: { status: string }[] }).results;
  const notStored = results.filter((r) => r.status !== 'stored');
  if (notStored.length > 0)
    throw new Error(`ingest did not store ${notStored.length} events: ${text.slice(0, 300)}`);
}

/**
 * The bulk baseline: `n` event rows of the same shape, straight into the events table.
 * Returns its rate and the CPU (s) it took: this process's, and the COPY backend's (null on
 * PGlite, whose CPU is this process's).
 */
async function bulkLoad(
  database: Database,
  w: World,
  url: string | undefined,
  n: number,
): Promise<{ rate: number; cpu: number; pgCpu: number | null }> {
  const canaries = await canariesFor(database.db, w, n);
  const accounts = await findAccounts(
    database.db,
    Object.values(w.handles).map((handle) => ({ platform: 'testbed', handle })),
  );
  const idOf = (h: string) => accounts.find((a) => a.handle === h)!.id;
  const requestId = randomUUID();
  const rows = canaries
    .flatMap((c) => {
      const s = sentEvent(w, c);
      const b = receivedEvent(w, 'bob', c);
      const k = receivedEvent(w, 'carol', c);
      return [
        [s.event_id, w.us.id, 'sent', idOf(w.handles.alice), c.id, null, s.at, JSON.stringify(s)],
        [b.event_id, w.cn.id, 'received', idOf(w.handles.bob), c.id, c.nonce, b.at, JSON.stringify(b)],
        [k.event_id, w.cn.id, 'received', idOf(w.handles.carol), c.id, c.nonce, k.at, JSON.stringify(k)],
      ] as const;
    })
    .slice(0, n);
  const cpu0 = cpuMs();
  let copyCpuMs: number | null = null;
  const started = performance.now();
  if (url) {
    copyCpuMs = await copyEvents(
      url,
      rows.map((r) => [
        r[0],
        r[1],
        requestId,
        'bench-signature',
        r[2],
        'testbed',
        r[3],
        w.group,
        r[4],
        r[5],
        r[6],
        '0',
        r[7],
      ]),
    );
  } else {
    for (let i = 0; i < rows.length; i += BATCH) {
      await insertEvents(
        database.db,
        rows.slice(i, i + BATCH).map((r) => ({
          eventId: r[0],
          probeId: r[1],
          requestId,
          signature: 'bench-signature',
          type: r[2],
          platform: 'testbed',
          accountId: r[3],
          conversation: w.group,
          canaryId: r[4],
          nonce: r[5],
          at: r[6],
          clockOffsetMs: 0,
          raw: r[7],
        })),
        // Fresh ids: a copy can only be in this month's partition (decision 039).
        monthStart(new Date()),
      );
    }
  }
  const rate = rows.length / ((performance.now() - started) / 1000);
  const cpu = (cpuMs() - cpu0) / 1000;
  return { rate, cpu, pgCpu: copyCpuMs === null ? null : copyCpuMs / 1000 };
}

async function runTarget(target: 'pglite' | 'pg'): Promise<void> {
  let url: string | undefined;
  let dbName = '';
  let dropScratch: (() => Promise<void>) | undefined;
  let cpuOfBackends: (() => Promise<number | null>) | undefined;
  if (target === 'pg') {
    const base = process.env.BENCH_DATABASE_URL ?? process.env.DATABASE_URL;
    if (!base)
      throw new Error(
        '--db pg needs BENCH_DATABASE_URL (a server and a database to create scratch databases from)',
      );
    const scratch = await createScratchDatabase(base, 'sd_bench_ingest');
    dbName = scratch.name;
    url = scratch.url;
    dropScratch = scratch.drop;
    cpuOfBackends = scratch.backendCpuMs;
  }
  const database = await openDatabase({ databaseUrl: url, dataDir: '', inMemory: true, poolSize: 20 });
  try {
    await database.migrate();
    const unlimited = { max: 1e9, timeWindowMs: 60_000 };
    const app = await buildApp({
      db: database.db,
      config: { adminToken: TEST_ADMIN_TOKEN, hashKey: TEST_HASH_KEY, checkinIntervalMs: 60_000 },
      logger: createLogger({ level: 'silent' }),
      rateLimit: unlimited,
      probeRateLimit: unlimited,
      adminRateLimit: unlimited,
      authFailureLimit: unlimited,
    });
    const base = await app.listen({ host: '127.0.0.1', port: 0 });
    const w = await buildWorld(app, database.db);
    // The months a collector in service keeps (decision 039): this one and the ones before.
    const filled = performance.now();
    await fillPastMonths(database.db, monthsKept - 1, rowsPerMonth, w.us.id, w.accountIds.alice);
    out(
      `\n${monthsKept} monthly partitions of events kept, ${rowsPerMonth} rows in each past one (${((performance.now() - filled) / 1000).toFixed(1)} s to fill)`,
    );
    out(
      `\n${target === 'pg' ? `Postgres server (${dbName})` : 'PGlite (in memory, worker thread)'}: ${eventsPerRun} events per run, batches of ${BATCH}`,
    );
    out(
      `${'clients'.padEnd(8)}${'ingest ev/s'.padStart(13)}${'bulk ev/s'.padStart(12)}${'ratio'.padStart(8)}${'batch p50'.padStart(11)}${'p95'.padStart(9)}${'process CPU'.padStart(13)}${'Postgres CPU'.padStart(14)}${'bulk CPU'.padStart(10)}${'CPU ratio'.padStart(11)}`,
    );
    for (const clients of clientCounts) {
      const canaries = await canariesFor(database.db, w, eventsPerRun);
      const batches = batchesFor(w, canaries, eventsPerRun);
      await analyzeTables(database.db);
      const latencies: number[] = [];
      const queue = [...batches];
      const cpu0 = cpuMs();
      const pg0 = cpuOfBackends ? await cpuOfBackends() : null;
      const t0 = performance.now();
      await Promise.all(
        Array.from({ length: clients }, async () => {
          for (let b = queue.shift(); b; b = queue.shift()) {
            const s = performance.now();
            await post(base, b);
            latencies.push(performance.now() - s);
          }
        }),
      );
      const wall = (performance.now() - t0) / 1000;
      const cpu = (cpuMs() - cpu0) / 1000;
      const pg1 = cpuOfBackends ? await cpuOfBackends() : null;
      const rate = eventsPerRun / wall;
      const pgCpuS = pg0 !== null && pg1 !== null ? (pg1 - pg0) / 1000 : null;
      const bulk = await bulkLoad(database, w, url, eventsPerRun);
      const pgCpu = pgCpuS !== null ? `${pgCpuS.toFixed(1)} s` : '—';
      // CPU per event of the bulk load over that of ingest (both halves: this process and
      // the server's backends): the ratio without the machine's other load in it.
      const bulkCpu = bulk.cpu + (bulk.pgCpu ?? 0);
      const cpuRatio = bulkCpu / (cpu + (pgCpuS ?? 0));
      out(
        `${String(clients).padEnd(8)}${rate.toFixed(0).padStart(13)}${bulk.rate.toFixed(0).padStart(12)}${(rate / bulk.rate).toFixed(2).padStart(8)}${`${median(latencies).toFixed(0)} ms`.padStart(11)}${`${quantile(latencies, 0.95).toFixed(0)} ms`.padStart(9)}${`${cpu.toFixed(1)} s`.padStart(13)}${pgCpu.padStart(14)}${`${bulkCpu.toFixed(1)} s`.padStart(10)}${cpuRatio.toFixed(2).padStart(11)}   (wall ${wall.toFixed(1)} s)`,
      );
    }
    await app.close();
  } finally {
    await database.close();
    await dropScratch?.();
  }
}

for (const t of targets) await runTarget(t as 'pglite' | 'pg');

/**
 * Time of a judging sweep on a large campaign (issue 12, decision 028):
 *
 *   npm run bench:judging                                   # PGlite (worker thread), 200 sets × 4 scopes × 50 rounds
 *   BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres npm run bench:judging -- --sets 500 --rounds 60
 *
 * Seeds one campaign in SQL (collector/db/judging-bench.ts: `--sets` term sets in 4 scopes,
 * `--rounds` rounds, every outcome final), then prints: the sweeps until everything is judged (a
 * recomputation from scratch), the median time of a sweep with nothing new, and of a sweep after
 * one outcome changed in one scope, with the cells judged and pair rows read; then the plans
 * (EXPLAIN ANALYZE) of the statements the one-scope sweep runs. Each phase prints the longest
 * event-loop stall of the sweeps in it (the collector's HTTP server waits that long at most).
 * `--no-explain` leaves the plans
 * out (a tree without incremental judging has neither the statements nor the counts).
 * On a server, a scratch database is created and dropped.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { createScratchDatabase } from '../collector/db/ingest-bench.ts';
import { seedJudgingCampaign } from '../collector/db/judging-bench.ts';
import { openDatabase } from '../collector/db/open.ts';
import { recomputeCampaignFindings } from '../collector/findings.ts';

const { values } = parseArgs({
  options: {
    sets: { type: 'string', default: '200' },
    rounds: { type: 'string', default: '50' },
    runs: { type: 'string', default: '5' },
    'no-explain': { type: 'boolean', default: false },
  },
});
const sets = Number(values.sets);
const rounds = Number(values.rounds);
const runs = Number(values.runs);
if (!Number.isInteger(sets) || sets < 1 || !Number.isInteger(rounds) || rounds < 1 || !(runs >= 1)) {
  throw new Error('--sets, --rounds, --runs: positive integers');
}
const base = process.env.BENCH_DATABASE_URL;
const scratch = base ? await createScratchDatabase(base, 'bench_judging') : undefined;
const dataDir = scratch ? undefined : mkdtempSync(join(tmpdir(), 'sd-bench-judging-'));
const database = await openDatabase(
  scratch ? { databaseUrl: scratch.url, dataDir: '' } : { dataDir: dataDir!, inMemory: true },
);
const load = () =>
  loadavg()
    .map((x) => x.toFixed(2))
    .join(' ');
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? Number.NaN;
try {
  await database.migrate();
  const { db } = database;
  const stepMs = 60_000;
  const start = new Date(Date.now() - rounds * stepMs - 3600_000);
  console.log(
    `judging bench on ${scratch ? 'Postgres (server)' : 'PGlite'}: ${sets} term sets × 4 scopes × ${rounds} rounds`,
  );
  console.log(`load average at start: ${load()}`);
  let t = performance.now();
  const campaign = await seedJudgingCampaign(db, { termSets: sets, rounds, start, stepMs });
  console.log(
    `seeded ${sets * rounds * 4} canaries, ${sets * rounds * 4 * 2} outcomes in ${((performance.now() - t) / 1000).toFixed(1)} s`,
  );
  const c = { id: campaign.id, mode: 'monitor' as const, deadlineSeconds: 60 };
  type Result = Awaited<ReturnType<typeof recomputeCampaignFindings>> & {
    keysJudged?: number;
    pairsRead?: number;
  };
  // the longest event-loop stall of a phase's sweeps (reset when a phase prints it)
  const stalls = monitorEventLoopDelay({ resolution: 10 });
  const stall = () => {
    const ms = stalls.max / 1e6;
    stalls.reset();
    return `; longest event-loop stall ${ms.toFixed(0)} ms`;
  };
  const sweep = async (): Promise<{ ms: number; r: Result }> => {
    const s = performance.now();
    stalls.enable();
    const r: Result = await recomputeCampaignFindings(db, c, new Date());
    stalls.disable();
    return { ms: performance.now() - s, r };
  };
  const counts = (r: Result) =>
    r.keysJudged === undefined
      ? `, ${r.findings} findings written`
      : `, ${r.keysJudged} cells judged, ${r.pairsRead} pair rows read, ${r.findings} findings written`;

  t = performance.now();
  let sweeps = 0;
  for (let more = true; more && sweeps < 100; ) {
    const { r } = await sweep();
    sweeps++;
    more = (r as { backlog?: number }).backlog !== undefined && (r as { backlog: number }).backlog > 0;
  }
  console.log(
    `everything judged (from scratch): ${sweeps} sweep(s), ${(performance.now() - t).toFixed(0)} ms${stall()}`,
  );

  const idle: number[] = [];
  let last: Result | undefined;
  for (let i = 0; i < runs; i++) {
    const { ms, r } = await sweep();
    idle.push(ms);
    last = r;
  }
  console.log(
    `sweep with nothing new: median ${median(idle).toFixed(1)} ms of ${runs}${last ? counts(last) : ''}${stall()}`,
  );

  const one: number[] = [];
  for (let i = 0; i < runs; i++) {
    await campaign.touchOneScope();
    const { ms, r } = await sweep();
    one.push(ms);
    last = r;
  }
  console.log(
    `sweep after one outcome changed in one scope: median ${median(one).toFixed(1)} ms of ${runs}${last ? counts(last) : ''}${stall()}`,
  );
  console.log(`load average at end: ${load()}`);

  if (!values['no-explain']) {
    const { explainOneScope } = await import('../collector/db/judging-explain.ts');
    await campaign.touchOneScope();
    console.log(await explainOneScope(db, campaign.id, new Date(Date.now() - 60_000)));
  }
} finally {
  await database.close();
  if (scratch) await scratch.drop();
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
}

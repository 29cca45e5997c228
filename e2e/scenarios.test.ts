/**
 * The scenario table (scenarios.ts) through testbed → probes → collector → outcomes in
 * Postgres, per adapter: `testbed` (HTTP API) always, `browser` (real headless Chromium
 * driving the testbed's web client) when Chromium is found — skipped with a notice
 * otherwise, failed when SILENTDROP_REQUIRE_ALL=1. Database targets: PGlite, and the
 * TEST_DATABASE_URL server when set (the testbed adapter runs on every target, the
 * slower browser adapter on the first). Rows run a few at a time; each row's outcomes
 * are then checked one test per row.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chromiumOrUndefined } from '../probe/adapters/browser/test-support.ts';
import { type AdapterProfile, runScenario, type ScenarioResult } from './run-scenario.ts';
import { SCENARIOS } from './scenarios.ts';
import { dbTargets } from './support/db.ts';

const requireAll = process.env.SILENTDROP_REQUIRE_ALL === '1';
const chromium = await chromiumOrUndefined();
if (!chromium) {
  process.stderr.write(
    `\n[scenario table] browser adapter SKIPPED: no Chromium found (/usr/bin/chromium or SILENTDROP_CHROMIUM)${requireAll ? ' — but SILENTDROP_REQUIRE_ALL=1' : ''}\n\n`,
  );
}

const PROFILES: (AdapterProfile & { concurrency: number; available: boolean })[] = [
  {
    adapter: 'testbed',
    deadlineSeconds: 12,
    skip: {},
    rowTimeoutMs: 75_000,
    concurrency: 2,
    available: true,
  },
  {
    adapter: 'browser',
    // Typing into a web client is slower than an API call: a longer deadline covers the send lag
    // of an account's queue (rows with three term sets give each account a dozen messages,
    // typed one after another while the rest of the suite shares the two cores).
    deadlineSeconds: 30,
    skip: {},
    rowTimeoutMs: 150_000,
    concurrency: 1,
    available: chromium !== undefined,
    settings: {
      pacing: { actionDelayMs: [0, 5], keyDelayMs: [0, 3], minSendIntervalMs: 0 },
      sendTimeoutMs: 10_000,
      navigationTimeoutMs: 15_000,
      saveStateEveryMs: 0,
      refreshConversationsEveryMs: 0,
    },
  },
];

it.runIf(requireAll)('finds Chromium for the browser adapter when SILENTDROP_REQUIRE_ALL=1', () => {
  expect(chromium, 'no Chromium found: install chromium or set SILENTDROP_CHROMIUM').toBeDefined();
});

/** Runs `jobs` with at most `n` at once. */
async function pool<T>(n: number, jobs: (() => Promise<T>)[]): Promise<T[]> {
  const out: T[] = new Array(jobs.length);
  let next = 0;
  const worker = async () => {
    while (next < jobs.length) {
      const i = next++;
      out[i] = await jobs[i]!();
    }
  };
  await Promise.all(Array.from({ length: Math.min(n, jobs.length) }, worker));
  return out;
}

for (const profile of PROFILES) {
  const targets = profile.adapter === 'testbed' ? dbTargets() : dbTargets().slice(0, 1);
  for (const target of targets) {
    describe.skipIf(!profile.available)(`scenario table: ${profile.adapter} adapter [${target.name}]`, () => {
      const results = new Map<string, ScenarioResult | Error>();
      const rows = SCENARIOS.filter((s) => !(s.id in profile.skip));

      beforeAll(
        async () => {
          await pool(
            profile.concurrency,
            rows.map((row) => async () => {
              const r = await runScenario(row, profile, target).catch((err: unknown) => err as Error);
              results.set(row.id, r);
            }),
          );
          // Each row has its own budget (rowTimeoutMs); the hook allows every row its budget.
        },
        Math.ceil(rows.length / profile.concurrency) * profile.rowTimeoutMs + 60_000,
      );

      afterAll(() => {
        const lines = [...results].map(([id, r]) =>
          r instanceof Error
            ? `  ${id}: error ${r.message}`
            : `  ${id}: ${(r.durationMs / 1000).toFixed(1)} s ${JSON.stringify(r.counts)}`,
        );
        process.stderr.write(`[scenario table ${profile.adapter}/${target.name}]\n${lines.join('\n')}\n`);
      });

      for (const row of SCENARIOS) {
        const reason = profile.skip[row.id];
        if (reason !== undefined) {
          it.skip(`${row.id} (skipped for ${profile.adapter}: ${reason})`, () => {});
          continue;
        }
        it(`${row.id}: ${row.title}`, () => {
          const r = results.get(row.id);
          if (r instanceof Error) throw r;
          expect(r, 'the row did not run').toBeDefined();
          expect(r?.mismatches).toEqual([]);
        });
      }
    });
  }
}

/**
 * The evaluate test table (evaluate-table.test.ts runs its rows, two at a time):
 * `silentdrop evaluate` against the testbed: a table of policies and term lists, each run as
 * a whole local network (collector on PGlite, testbed with the policy and 3 % background
 * loss, one in-process probe per region, 3 accounts per region in direct chats and a group)
 * until every verdict settles. The report must name exactly the policy's rules — the right
 * term sets, verdicts and scopes — and `none` everywhere else. Rows run concurrently (they
 * mostly wait on cadence); each takes one to four minutes alone.
 */
import { expect } from 'vitest';
import { type RuleLike, reportMismatches } from './expect.ts';
import { runEvaluation } from './run.ts';

export interface Row {
  id: string;
  rules: (RuleLike & Record<string, unknown>)[];
  terms: string;
  /** The minimal term sets the report must hold (listed sets, plus combinations isolation finds). */
  expected: string[][];
  /** Campaign mode; rows without one run in `isolate` (every set judged alone). */
  mode?: 'isolate' | 'screen';
  /** At most this many canaries (tests and controls) may be sent. */
  maxMessages?: number;
  /** How long the run may take to settle (default 240 s). */
  timeoutMs?: number;
}

const INNOCENT = [
  '图书馆',
  '火车站',
  '音乐会',
  '电影院',
  '足球赛',
  '医院',
  '公园',
  '咖啡馆',
  '博物馆',
  '动物园',
];

const DEADLINE_S = 3;

/** How long a row may take to settle unless it says otherwise. */
export const ROW_TIMEOUT_MS = 240_000;

export const ROWS: Row[] = [
  {
    id: 'screen mode: eleven sets packed, one dropped for CN recipients',
    mode: 'screen',
    rules: [{ id: 'june4', match: { any: ['六四'] }, action: 'drop', scope: { recipient_region: ['CN'] } }],
    terms: `${INNOCENT.join('\n')}\n六四\n`,
    expected: [['六四'], ...INNOCENT.map((t) => [t])],
    // With the clearance rule (decision 038) the screen spends more than it did with one intact
    // pack (about 150 canaries, 80 s): measured 2026-12-06, 612 to 1,173 canaries and 187 to
    // 230 s in five runs that settled, and one run alone still open after 240 s (918 sent).
    // Background loss is most of it: a pack in a group reads positive when any of the scope's
    // two or three recipients lost it (6 to 9 % at 3 % loss), and the clearance takes each loss
    // for a possible partial drop (a re-ask, a split, a set sent to the rounds). The same row in
    // `isolate` mode (one set per message) settled in 270 s with 3,816 canaries; the screen must
    // spend at most half of that.
    maxMessages: 1_900,
    timeoutMs: 480_000,
  },
  {
    id: 'silent drop per recipient, group only',
    rules: [
      {
        id: 'june4',
        match: { any: ['六四'] },
        action: 'drop',
        scope: { conversation: 'group', recipient_region: ['CN'] },
      },
    ],
    terms: '六四\n图书馆\n',
    expected: [['六四'], ['图书馆']],
  },
  {
    id: 'notice seen by the sender, direct chats of CN senders only',
    rules: [
      {
        id: 'overt',
        match: { any: ['法轮功'] },
        action: 'notice',
        notice: 'This message contains inappropriate content',
        scope: { conversation: 'direct', sender_region: ['CN'] },
      },
    ],
    terms: '法轮功\n',
    expected: [['法轮功']],
  },
  {
    id: 'combination: both terms together, neither alone',
    rules: [
      { id: 'combo', match: { all: ['709', '律师'] }, action: 'drop', scope: { recipient_region: ['CN'] } },
    ],
    terms: '709 + 律师\n709\n律师\n',
    expected: [['709', '律师'], ['709'], ['律师']],
  },
  {
    id: 'delay past the deadline and replacement',
    rules: [
      { id: 'slow', match: { any: ['维权'] }, action: 'delay', delay_ms: DEADLINE_S * 1000 + 1500 },
      {
        id: 'mask',
        match: { any: ['习近平'] },
        action: 'replace',
        replace_with: '***',
        scope: { recipient_region: ['CN'] },
      },
    ],
    terms: '维权\n习近平\n',
    expected: [['维权'], ['习近平']],
  },
];

/** Runs one row through `runEvaluation` and checks the report against the row's policy. */
export async function checkRow(row: Row): Promise<void> {
  const result = await runEvaluation({
    policy: { regions: ['CN', 'US'], background: { loss: 0.03 }, rules: row.rules },
    terms: row.terms,
    cadence: '*/2 * * * * *',
    deadlineSeconds: DEADLINE_S,
    accountsPerRegion: 3,
    timeoutMs: row.timeoutMs ?? ROW_TIMEOUT_MS,
    seed: `row-${row.id}`,
    testbedSeed: 7,
    mode: row.mode ?? 'isolate',
  });
  const { report } = result;
  expect(report.version).toBe(1);
  expect(reportMismatches(row.rules, report.findings, row.expected)).toEqual([]);
  // 2 regions: direct CN→US, US→CN; group CN→CN, CN→US, US→CN, US→US
  expect(report.findings.length).toBe(row.expected.length * 6);
  expect(result.settled).toBe(true);
  // every canary sent counts (tests and controls): at least a pair per finding
  expect(report.messages_sent).toBeGreaterThanOrEqual(row.mode === 'screen' ? 1 : 2 * report.findings.length);
  if (row.maxMessages !== undefined) expect(report.messages_sent).toBeLessThanOrEqual(row.maxMessages);
  for (const f of report.findings) {
    expect(f.n_test).toBeGreaterThan(0);
    expect(f.ci[0]).toBeLessThanOrEqual(f.rate_test + 1e-9);
    expect(f.ci[1]).toBeGreaterThanOrEqual(f.rate_test - 1e-9);
  }
}

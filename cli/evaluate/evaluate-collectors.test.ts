/**
 * Several collectors on one Postgres (issue 15, docs/decisions/025): the same campaign, seed
 * and policy run twice on the server — once with one collector, once with three, each with its
 * own server, pool and sweep, the three regions' probes split between them. Every collector
 * materialises rounds, finalises outcomes, recomputes findings and plans follow-ups on its own
 * timer, so the three race for every piece of the adaptive loop. The three-collector run must
 * leave no duplicate round, canary, send report, follow-up step or finding, and settle to the
 * same findings (term set, scope, verdict) as the single collector. Runs in the evaluate phase
 * (vitest.evaluate.config.ts): two whole networks at once, about two minutes.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, expect, it } from 'vitest';
import { describeOnServer } from '../../collector/test-support/db.ts';
import { type LocalNetwork, startLocalNetwork } from '../local/network.ts';
import { type RuleLike, reportMismatches } from './expect.ts';
import { type ReportFinding, readReport } from './report.ts';

const INNOCENT = ['图书馆', '火车站', '音乐会', '电影院', '足球赛'];
const TERM_SETS = [['六四'], ['709', '律师'], ['709'], ['律师'], ['法轮功'], ...INNOCENT.map((t) => [t])];
const RULES: (RuleLike & Record<string, unknown>)[] = [
  { id: 'june4', match: { any: ['六四'] }, action: 'drop', scope: { recipient_region: ['CN'] } },
  {
    id: 'combo',
    match: { all: ['709', '律师'] },
    action: 'drop',
    scope: { conversation: 'group', recipient_region: ['US'] },
  },
  {
    id: 'overt',
    match: { any: ['法轮功'] },
    action: 'notice',
    notice: 'This message contains inappropriate content',
    scope: { conversation: 'direct', sender_region: ['CN'] },
  },
];
const REGIONS = { CN: 2, US: 2, AU: 2 };
const TIMEOUT_MS = 330_000;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Run {
  findings: ReportFinding[];
  settled: boolean;
  seconds: number;
  /** Probe requests each collector answered (from its own /metrics), in collector order. */
  probeRequests: number[];
}

async function probeRequestsOf(net: LocalNetwork): Promise<number[]> {
  const out: number[] = [];
  for (const c of net.collectors) {
    const text = (await c.app.inject({ method: 'GET', url: '/metrics' })).body;
    let n = 0;
    for (const line of text.split('\n')) {
      const m = /^sd_http_request_duration_seconds_count\{[^}]*route="\/probe\/v1\/[^"]*"[^}]*\} (\d+)/.exec(
        line,
      );
      if (m) n += Number(m[1]);
    }
    out.push(n);
  }
  return out;
}

async function run(databaseUrl: string, collectors: number): Promise<Run> {
  const dataDir = mkdtempSync(join(tmpdir(), `silentdrop-collectors-${collectors}-`));
  const started = Date.now();
  const net = await startLocalNetwork({
    dataDir,
    policy: { regions: Object.keys(REGIONS), rules: RULES },
    termSets: TERM_SETS,
    regions: REGIONS,
    cadence: '*/2 * * * * *',
    deadlineSeconds: 3,
    probeMode: 'in-process',
    campaign: {
      name: 'collectors',
      mode: 'screen',
      termSetsPerRound: TERM_SETS.length,
      seed: 'three-collectors',
    },
    collector: { databaseUrl, count: collectors, checkinIntervalMs: 5000, sweepIntervalMs: 2000 },
    probeCheckinCron: '*/2 * * * * *',
    testbed: { seed: 7, rateLimit: false },
    logLevel: 'warn',
  });
  try {
    const db = net.collector.database.db;
    let state = await readReport(db, net.campaign.id, TERM_SETS);
    while (!state.settled && Date.now() - started < TIMEOUT_MS) {
      await sleep(1000);
      state = await readReport(db, net.campaign.id, TERM_SETS);
    }
    return {
      findings: state.report.findings,
      settled: state.settled,
      seconds: Math.round((Date.now() - started) / 1000),
      probeRequests: await probeRequestsOf(net),
    };
  } finally {
    await net.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

/** Rows that would show a piece of the loop done twice; each query must return nothing. */
const DUPLICATES: Record<string, string> = {
  'rounds (campaign, round_at)': `select campaign_id, round_at from rounds group by 1, 2 having count(*) > 1`,
  // a round's pair is one test and one control; a follow-up message's test may share its step's
  // controls (decision 024), so its pair holds one test and at most one control
  'canaries per pair (one test; one control, none for a follow-up sharing them)': `select pair_id
      from canaries group by pair_id
      having count(*) filter (where kind = 'test') <> 1 or count(*) filter (where kind = 'control') > 1
        or (bool_and(round_id is not null) and count(*) filter (where kind = 'control') <> 1)`,
  'rounds planned twice (same seed and time)': `select r.campaign_id, c.seed, c.send_at, c.sender_account_id, c.conversation_id, c.kind
      from canaries c join rounds r on r.id = c.round_id
      group by 1, 2, 3, 4, 5, 6, c.term_set having count(*) > 1`,
  'send reports per canary': `select canary_id from events where type in ('sent', 'rejected', 'failed')
      group by canary_id having count(*) > 1`,
  'follow-up steps sharing a pair': `select p from followup_steps, unnest(pair_ids) p group by p having count(*) > 1`,
  'follow-up canaries in no step': `select c.id from canaries c where c.round_id is null
      and not exists (select 1 from followup_steps s where c.pair_id = any(s.pair_ids))`,
  'follow-ups (campaign, key)': `select campaign_id, key from followups group by 1, 2 having count(*) > 1`,
  'findings (campaign, key)': `select campaign_id, key from findings where key is not null group by 1, 2 having count(*) > 1`,
};

async function duplicatesIn(url: string): Promise<Record<string, number>> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const out: Record<string, number> = {};
    for (const [name, query] of Object.entries(DUPLICATES)) {
      out[name] = (await client.query(query)).rowCount ?? 0;
    }
    return out;
  } finally {
    await client.end();
  }
}

const keyOf = (f: ReportFinding) =>
  `${[...f.terms].sort().join(' + ')}|${f.scope.conversation}|${f.scope.sender_region}|${f.scope.recipient_region}`;

describeOnServer('three collectors on one Postgres', (getUrl) => {
  // Two databases on the server: one per run (describeOnServer made the first).
  const second = new URL(getUrl());
  second.pathname = `${second.pathname}_one`;
  afterAll(async () => {
    const admin = new pg.Client({ connectionString: process.env.TEST_DATABASE_URL });
    await admin.connect();
    await admin.query(`drop database if exists ${second.pathname.slice(1)} with (force)`);
    await admin.end();
  });

  it('settle the same findings as one collector, with nothing done twice', async () => {
    const admin = new pg.Client({ connectionString: process.env.TEST_DATABASE_URL });
    await admin.connect();
    await admin.query(`create database ${second.pathname.slice(1)}`);
    await admin.end();

    const [one, three] = await Promise.all([run(second.toString(), 1), run(getUrl(), 3)]);

    console.log(
      `one collector: ${one.seconds} s; three collectors: ${three.seconds} s, probe requests per collector ${three.probeRequests.join('/')}`,
    );
    // nothing done twice, settled or not
    expect(await duplicatesIn(getUrl())).toEqual(
      Object.fromEntries(Object.keys(DUPLICATES).map((k) => [k, 0])),
    );

    expect(one.settled, `one collector: not settled after ${one.seconds} s`).toBe(true);
    expect(three.settled, `three collectors: not settled after ${three.seconds} s`).toBe(true);
    // each of the three collectors served its probe
    expect(three.probeRequests).toHaveLength(3);
    for (const n of three.probeRequests) expect(n).toBeGreaterThan(0);

    // both runs name exactly the policy, and the same verdict for every term set and scope
    expect(reportMismatches(RULES, three.findings, TERM_SETS)).toEqual([]);
    expect(reportMismatches(RULES, one.findings, TERM_SETS)).toEqual([]);
    const verdicts = (r: Run) =>
      Object.fromEntries(r.findings.map((f) => [keyOf(f), `${f.verdict} ${f.settled}`]));
    expect(verdicts(three)).toEqual(verdicts(one));
    // 3 regions: direct chats across regions (6 ordered pairs) and one group (9)
    expect(three.findings.length).toBe(TERM_SETS.length * 15);
  }, 400_000);
});

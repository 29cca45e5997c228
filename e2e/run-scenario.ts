/**
 * Runs one row of the scenario table end to end: a local network (collector on a real
 * Postgres — PGlite or the TEST_DATABASE_URL server —, a testbed with the row's policy,
 * one in-process probe per region driving the given adapter), a campaign of one round
 * over the row's term sets with matched controls, then reads the outcomes back from
 * Postgres (the collector's research repository) and compares each one with what the
 * row's policy says for that recipient.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type LocalAdapter, type LocalNetwork, startLocalNetwork } from '../cli/local/network.ts';
import { type ResearchOutcomeRow, readOutcomes } from '../collector/db/research-outcomes.ts';
import {
  type ConversationKind,
  expectedStatus,
  type LossExpectation,
  REGIONS,
  type Scenario,
  termSetsOf,
} from './scenarios.ts';
import { type DbTarget, freshDatabase } from './support/db.ts';

export interface AdapterProfile {
  adapter: LocalAdapter;
  /** Canary deadline: must cover the adapter's send lag (a browser types each message). */
  deadlineSeconds: number;
  /** Rows this adapter does not run, with the reason (printed by the test). */
  skip: Record<string, string>;
  /** Extra account settings for the adapter. */
  settings?: Record<string, unknown>;
  /** How long a row may take before it counts as failed. */
  rowTimeoutMs: number;
}

export interface ObservedOutcome {
  kind: 'test' | 'control';
  terms: string[];
  senderRegion: string;
  recipientRegion: string;
  conversationKind: ConversationKind;
  status: string;
  text: string;
  receivedText: string | null;
  notice: string | null;
}

export interface ScenarioResult {
  outcomes: ObservedOutcome[];
  /** Expected number of outcomes (canaries × recipients) for one round. */
  expectedCount: number;
  /** Human-readable differences; empty when the row passed. */
  mismatches: string[];
  /** Outcome counts by status, for the log. */
  counts: Record<string, number>;
  durationMs: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** How many outcomes one round makes: per conversation and term set, one sender per region, test + control, to every other member. */
function expectedOutcomeCount(net: LocalNetwork, termSets: number): number {
  const regionOf = new Map(net.accounts.map((a) => [a.handle, a.region]));
  let n = 0;
  for (const c of net.conversations) {
    const senders = new Set(c.members.map((m) => regionOf.get(m))).size;
    n += senders * 2 * (c.members.length - 1);
  }
  return n * termSets;
}

async function allOutcomes(net: LocalNetwork): Promise<ResearchOutcomeRow[]> {
  const out: ResearchOutcomeRow[] = [];
  for (;;) {
    const last = out.at(-1);
    const page = await readOutcomes(
      net.collector.database.db,
      { campaign: net.campaign.id },
      {
        order: 'asc',
        limit: 1000,
        ...(last
          ? {
              after: {
                sendAt: last.key_send_at,
                canaryId: last.canary_id,
                recipientId: last.recipient_account_id,
              },
            }
          : {}),
      },
    );
    out.push(...page);
    if (page.length < 1000) return out;
  }
}

const key = (terms: readonly string[]) => JSON.stringify([...terms].sort());

/** Every difference between the observed outcomes and the row; empty when they agree. */
export function compare(row: Scenario, outcomes: ObservedOutcome[], expectedCount: number): string[] {
  const problems: string[] = [];
  if (outcomes.length !== expectedCount) {
    problems.push(`expected ${expectedCount} outcomes (canaries × recipients), found ${outcomes.length}`);
  }
  if (!Array.isArray(row.expect)) return [...problems, ...compareLoss(row.expect, outcomes)];
  const rows = new Map(row.expect.map((e) => [key(e.terms), e]));
  for (const o of outcomes) {
    const e = rows.get(key(o.terms));
    const want = e && expectedStatus(e, o.kind, o.recipientRegion, o.conversationKind);
    if (want === undefined) {
      problems.push(
        `no expectation for ${o.kind} ${o.terms.join('+')} → ${o.recipientRegion}/${o.conversationKind}`,
      );
    } else if (o.status !== want) {
      const seen =
        o.receivedText !== null && o.receivedText !== o.text ? ` (received "${o.receivedText}")` : '';
      problems.push(
        `${o.kind} ${o.terms.join('+')} ${o.senderRegion}→${o.recipientRegion} ${o.conversationKind}: ${o.status}, expected ${want}${seen}`,
      );
    }
  }
  for (const e of row.expect) {
    if (!outcomes.some((o) => key(o.terms) === key(e.terms)))
      problems.push(`no outcome for ${e.terms.join('+')}`);
  }
  return problems;
}

function compareLoss(e: LossExpectation, outcomes: ObservedOutcome[]): string[] {
  const problems: string[] = [];
  const odd = outcomes.filter((o) => o.status !== 'missing' && o.status !== 'delivered');
  if (odd.length > 0)
    problems.push(`only delivered/missing expected, found ${odd.map((o) => o.status).join(', ')}`);
  if (outcomes.length < e.minOutcomes) problems.push(`${outcomes.length} outcomes, need ${e.minOutcomes}`);
  const rate = outcomes.filter((o) => o.status === 'missing').length / Math.max(1, outcomes.length);
  if (Math.abs(rate - e.missingRate) > e.tolerance) {
    problems.push(`missing rate ${rate.toFixed(3)}, expected ${e.missingRate} ± ${e.tolerance}`);
  }
  return problems;
}

export async function runScenario(
  row: Scenario,
  profile: AdapterProfile,
  target: DbTarget,
): Promise<ScenarioResult> {
  const started = Date.now();
  const dataDir = mkdtempSync(join(tmpdir(), `sd-e2e-${row.id}-`));
  const database = await freshDatabase(target);
  const termSets = termSetsOf(row);
  const policy =
    typeof row.policy === 'function'
      ? row.policy({ startMs: started, deadlineSeconds: profile.deadlineSeconds })
      : row.policy;
  let net: LocalNetwork | undefined;
  let nudger: NodeJS.Timeout | undefined;
  try {
    net = await startLocalNetwork({
      dataDir,
      policy,
      termSets,
      regions: REGIONS,
      adapter: profile.adapter,
      probeMode: 'in-process',
      // Every second, but the campaign lives for one second only: exactly one round.
      cadence: '* * * * * *',
      deadlineSeconds: profile.deadlineSeconds,
      campaign: {
        name: row.id,
        seed: row.id,
        startsAt: (now) => new Date(now.getTime() + 1500),
        endsAt: (now) => new Date(now.getTime() + 2500),
      },
      collector: {
        ...(database.url ? { databaseUrl: database.url } : {}),
        checkinIntervalMs: 5000,
        sweepIntervalMs: 250,
      },
      probeCheckinCron: '*/30 * * * * *',
      testbed: { seed: row.seed ?? 1, rateLimit: false },
      ...(profile.settings ? { adapterSettings: profile.settings } : {}),
      logLevel: 'info',
      env: {},
    });
    const running = net;
    // Check in more often than the probes' 30-s cron.
    const nudge = () => {
      for (const p of running.probes.values()) void p.handle?.checkin().catch(() => undefined);
    };
    nudge();
    nudger = setInterval(nudge, 700);

    const expectedCount = expectedOutcomeCount(running, termSets.length);
    const deadline = started + profile.rowTimeoutMs;
    let observed: ObservedOutcome[] = [];
    let problems: string[] = [];
    let settledAt: number | undefined;
    for (;;) {
      const rows = await allOutcomes(running);
      observed = rows.map((r) => ({
        kind: r.kind,
        // The research view names no term set until a canary is final (sealed): it agrees once settled.
        terms: r.term_set ?? [],
        senderRegion: r.sender_region,
        recipientRegion: r.recipient_region,
        conversationKind: r.conversation_kind as ConversationKind,
        status: r.status,
        text: r.text ?? '',
        receivedText: r.received_text,
        notice: r.notice,
      }));
      problems = compare(row, observed, expectedCount);
      const pending = rows.filter((r) => r.status === 'pending').length;
      const lastDeadline = Math.max(0, ...rows.map((r) => Date.parse(r.deadline_at)));
      // Done when everything is final and agrees, and stays so a little past the last deadline
      // (a late receipt would turn a `missing` into `delayed`).
      if (problems.length === 0 && pending === 0 && rows.length > 0) {
        settledAt ??= Math.max(Date.now(), lastDeadline) + 2500;
        if (Date.now() >= settledAt) break;
      } else {
        settledAt = undefined;
      }
      if (Date.now() > deadline) break;
      await sleep(400);
    }
    const counts: Record<string, number> = {};
    for (const o of observed) counts[o.status] = (counts[o.status] ?? 0) + 1;
    return {
      outcomes: observed,
      expectedCount,
      mismatches: problems,
      counts,
      durationMs: Date.now() - started,
    };
  } finally {
    clearInterval(nudger);
    await net?.stop();
    await database.cleanup().catch(() => undefined);
    if (process.env.SILENTDROP_KEEP_E2E !== '1') rmSync(dataDir, { recursive: true, force: true });
  }
}

/**
 * Findings: per campaign, term set and scope (platform, conversation kind, sender region,
 * recipient region), tests against their paired controls from the same windows, judged
 * together with Benjamini–Hochberg across the campaign (collector/analysis `judgeAll`), with
 * adaptive stopping (`sequentialLook`, state in Postgres) and onset/end (`detectChanges`).
 *
 * Recomputed from the stored outcomes on every sweep (idempotent upsert by campaign × key),
 * under a per-campaign advisory lock that a second collector skips instead of waiting for.
 *
 * Evidence is built per recipient of a pair: the test's outcome and its own control's outcome
 * for the same recipient, counted only when both are final and their deadlines passed more
 * than `graceMs` ago (default the campaign's deadline: a late receipt still turns `missing`
 * into `delayed`). Windows where both
 * arms mostly failed (outages) are left out; background loss hits both arms alike.
 *
 * Verdict stored: in `monitor` campaigns the fixed-sample verdict of `judgeAll` (settled never
 * set; onset and end from change-points). Otherwise a verdict is `settled` when the sequential
 * design settled it and, for a finding (suppressed, delayed, rejected, altered), BH over the
 * family agrees at the campaign's FDR; until then the current `judgeAll` verdict is stored,
 * unsettled, and the term set × scope keeps being scheduled (collector/rounds.ts). A campaign's
 * `min_independent_probes` holds any verdict at `inconclusive` until that many independent
 * probes gave the evidence (`holdUncorroborated`, decision 012).
 */
import type { Logger } from 'pino';
import type { CampaignMode } from '../protocol/index.ts';
import { type Corroboration, corroboration } from './analysis/corroboration.ts';
import {
  DEFAULT_SEQUENTIAL_DESIGN,
  detectChanges,
  type Finding,
  INITIAL_SEQUENTIAL_STATE,
  judgeAll,
  newcombeDifference,
  pairedEvidence,
  type ScreeningResult,
  type SequentialDesign,
  sequentialLook,
  type Verdict,
  wilson,
} from './analysis/index.ts';
import {
  campaignsToJudge,
  type FindingScope,
  type FindingWrite,
  type PairedOutcome,
  pairedOutcomes,
  type StoredSequentialState,
  saveSequentialStates,
  screenClearedKeys,
  sequentialStates,
  tryLockCampaign,
  upsertFindings,
} from './db/findings.ts';
import { type FollowupStep, testSendTimes } from './db/followups.ts';
import type { Db, Queryable } from './db/open.ts';
import { canonicalTermSet, findingKey, scopeKey } from './keys.ts';
import { yielder } from './yield.ts';

export interface FindingsOptions {
  /**
   * Outcomes count once their deadline passed this long ago (default: the campaign's deadline
   * again, so a receipt up to twice the deadline after sending is seen as `delayed`).
   */
  graceMs?: number;
  /** Sequential design (default DEFAULT_SEQUENTIAL_DESIGN). */
  design?: Partial<SequentialDesign>;
  /** New pairs between two sequential looks (default 4, as the design was simulated). */
  lookEvery?: number;
}

export const FINDING_VERDICTS: readonly Verdict[] = ['suppressed', 'delayed', 'rejected', 'altered'];
export const isFindingVerdict = (v: string) => (FINDING_VERDICTS as readonly string[]).includes(v);

interface Group {
  key: string;
  termSet: string[];
  scope: FindingScope;
  rows: PairedOutcome[];
}

/** Pure: paired outcomes grouped by term set × scope. */
export function groupPairs(pairs: readonly PairedOutcome[]): Group[] {
  const groups = new Map<string, Group>();
  for (const p of pairs) {
    const scope: FindingScope = {
      platform: p.platform,
      conversation_kind: p.kind,
      sender_region: p.senderRegion,
      recipient_region: p.recipientRegion,
    };
    const key = findingKey(p.termSet, scope);
    let g = groups.get(key);
    if (!g) {
      g = { key, termSet: canonicalTermSet(p.termSet), scope, rows: [] };
      groups.set(key, g);
    }
    g.rows.push(p);
  }
  return [...groups.values()];
}

const subsetOf = (a: readonly string[], b: readonly string[]) =>
  a.length < b.length && a.every((t) => b.includes(t));

/**
 * Pure: a finding is minimal unless a proper subset has the same finding verdict in the same
 * scope. Compared within scope × verdict only, so the work grows with the findings of one scope
 * and verdict, not with the square of the campaign's findings.
 */
export function markMinimal<T extends { termSet: string[]; scope: FindingScope; verdict: string }>(
  list: T[],
): (T & { minimal: boolean })[] {
  const byScopeVerdict = new Map<string, T[]>();
  for (const f of list) {
    if (!isFindingVerdict(f.verdict)) continue;
    const k = `${scopeKey(f.scope)}\u0000${f.verdict}`;
    const same = byScopeVerdict.get(k);
    if (same) same.push(f);
    else byScopeVerdict.set(k, [f]);
  }
  return list.map((f) => ({
    ...f,
    minimal:
      !isFindingVerdict(f.verdict) ||
      !(byScopeVerdict.get(`${scopeKey(f.scope)}\u0000${f.verdict}`) ?? []).some(
        (g) => g !== f && subsetOf(g.termSet, f.termSet),
      ),
  }));
}

/**
 * Late data revises evidence a settled decision rested on: a receipt that arrives after a
 * look turns that look's `missing` into `delayed`. When the sequential design settled one
 * finding verdict and the revised evidence now says another finding verdict, the settled
 * decision no longer describes the data; it is dropped and the next look decides again from
 * the revised evidence. (Otherwise `decide` would never settle the pair of disagreeing
 * verdicts, and the term set would be sent until the campaign ends.)
 */
export function reviseSettled(
  state: StoredSequentialState['state'],
  currentVerdict: Verdict,
): StoredSequentialState['state'] {
  const settled = state.settled?.verdict;
  if (
    settled !== undefined &&
    isFindingVerdict(settled) &&
    isFindingVerdict(currentVerdict) &&
    currentVerdict !== settled
  ) {
    return INITIAL_SEQUENTIAL_STATE;
  }
  return state;
}

interface Decided {
  verdict: Verdict;
  settled: boolean;
  finding: Finding;
}

function decide(
  mode: CampaignMode,
  current: Finding,
  state: StoredSequentialState['state'] | undefined,
  alpha: number,
): Decided {
  const settledVerdict = mode === 'monitor' ? undefined : state?.settled?.verdict;
  if (settledVerdict === undefined) return { verdict: current.verdict, settled: false, finding: current };
  if (isFindingVerdict(settledVerdict)) {
    // the sequential look and the family's FDR must agree before sending stops
    return current.verdict === settledVerdict && current.q <= alpha
      ? { verdict: settledVerdict, settled: true, finding: current }
      : { verdict: current.verdict, settled: false, finding: current };
  }
  return { verdict: settledVerdict, settled: true, finding: current };
}

/**
 * A verdict other than `inconclusive` needs each arm's evidence from at least `min`
 * independent probes (decision 012); until then it is held at `inconclusive`, unsettled.
 * With paired evidence both arms come from the same sender and recipient accounts.
 */
export function holdUncorroborated(
  d: Decided,
  support: { test: Corroboration; control: Corroboration },
  min: number,
): Decided {
  if (d.verdict === 'inconclusive') return d;
  if (Math.min(support.test.independent, support.control.independent) >= min) return d;
  return { ...d, verdict: 'inconclusive', settled: false };
}

/**
 * Findings for the listed sets a done screen cleared in its scope: `none`, settled, from the
 * packs that carried the set and arrived intact at the scope's recipients while their matched
 * controls arrived too. The screen clears a set only once its packs' answers rule out a
 * suppression rate of the sequential design's margin at its beta (followups.ts SCREEN_OPTIONS,
 * `clearance`; 11 intact packs without a positive; decision 024), so a rule that fires only
 * sometimes is not cleared by the one pack it missed. n_test counts the packs that arrived and
 * rate_test is 0, so this is not a comparison of rates: `detail.source` says `screen`, with the packs that carried the set.
 * A set cleared without a pack that arrived (none expected) gets no finding and is left to
 * the rounds. Written when the screen is done (collector/followups.ts calls this), so the
 * rounds planned in the same sweep already see the sets settled.
 */
export async function writeScreenClearances(
  q: Queryable,
  campaignId: string,
  run: { id: string; scope: FindingScope },
  sets: readonly string[][],
  result: ScreeningResult,
  steps: readonly FollowupStep[],
): Promise<void> {
  const pairs = steps.flatMap((s) => s.pairIds);
  await upsertFindings(
    q,
    campaignId,
    screenClearances(run, sets, result, steps, await testSendTimes(q, pairs)),
  );
}

/** Pure: the clearance findings of a done screen (see `writeScreenClearances`), given its packs' send times. */
export function screenClearances(
  run: { id: string; scope: FindingScope },
  sets: readonly string[][],
  result: ScreeningResult,
  steps: readonly FollowupStep[],
  sentAt: ReadonlyMap<string, number>,
): FindingWrite[] {
  const messages = steps.flatMap((s) =>
    s.messages.map((m, j) => ({ terms: m.terms, result: s.results?.[j], pair: s.pairIds[j] })),
  );
  const out: FindingWrite[] = [];
  result.status.forEach((status, i) => {
    const set = sets[i];
    if (status !== 'clear' || !set) return;
    const carried = messages.filter((m) => set.every((t) => m.terms.includes(t)));
    const arrived = carried.filter((m) => m.result === 'negative');
    const when = arrived.map((m) => (m.pair ? sentAt.get(m.pair) : undefined)).filter((x) => x !== undefined);
    if (arrived.length === 0 || when.length === 0) return;
    const n = arrived.length;
    const [ciLow, ciHigh] = wilson(0, n);
    const [diffLow, diffHigh] = newcombeDifference(0, n, 0, n);
    out.push({
      key: findingKey(set, run.scope),
      termSet: canonicalTermSet(set),
      scope: run.scope,
      windowStart: new Date(Math.min(...when)),
      windowEnd: new Date(Math.max(...when)),
      verdict: 'none',
      kind: 'missing',
      testTrials: n,
      controlTrials: n,
      testRate: 0,
      controlRate: 0,
      pValue: 1,
      qValue: 1,
      ciLow,
      ciHigh,
      diffCiLow: diffLow,
      diffCiHigh: diffHigh,
      settled: true,
      minimal: true,
      since: null,
      endedAt: null,
      detail: {
        source: 'screen',
        followup: run.id,
        packs_carrying: carried.length,
        packs_arrived: n,
        packs_suppressed: carried.filter((m) => m.result === 'positive').length,
      },
    });
  });
  return out;
}

export interface CampaignFindingsResult {
  /** False when another collector held the campaign's lock. */
  ran: boolean;
  findings: number;
  settled: number;
}

/** Recomputes and stores the findings of one campaign. */
export async function recomputeCampaignFindings(
  db: Db,
  campaign: { id: string; mode: CampaignMode; deadlineSeconds: number; minIndependentProbes?: number },
  now: Date,
  options: FindingsOptions = {},
): Promise<CampaignFindingsResult> {
  const design = { ...DEFAULT_SEQUENTIAL_DESIGN, ...options.design };
  const lookEvery = options.lookEvery ?? 4;
  // Read and judge outside a transaction, giving the event loop a turn every 20 ms (the work
  // grows with the campaign's pairs); a transaction held across those turns would hold PGlite's
  // one connection, and every check-in and upload with it. The write below takes the
  // campaign's lock and writes only if the sequential states it started from are still stored.
  const tick = yielder();
  const groups = groupPairs(
    await pairedOutcomes(db, campaign.id, now, options.graceMs ?? campaign.deadlineSeconds * 1000),
  );
  if (groups.length === 0) return { ran: true, findings: 0, settled: 0 };
  const built = [];
  for (const g of groups) {
    built.push({ ...g, ...pairedEvidence(g.rows) });
    await tick();
  }
  const current = judgeAll(
    built.map((b) => b.evidence),
    design.judge,
  );

  const stored = new Map((await sequentialStates(db, campaign.id)).map((s) => [s.key, s]));
  const cleared = await screenClearedKeys(db, campaign.id);
  const changedStates: StoredSequentialState[] = [];
  const writes: Omit<FindingWrite, 'minimal'>[] = [];
  for (const [i, b] of built.entries()) {
    await tick();
    const f = current[i];
    if (!f) continue;
    // A screen's clearance stands against incidental round pairs (a set sent for another
    // recipient region of the same conversation) unless they point to a finding.
    if (cleared.has(b.key) && !isFindingVerdict(f.verdict)) continue;
    let state = stored.get(b.key)?.state;
    if (campaign.mode !== 'monitor') {
      const before = state ?? INITIAL_SEQUENTIAL_STATE;
      const s = reviseSettled(before, f.verdict);
      const pairs = Math.min(f.n_test, f.n_control);
      const next =
        !s.settled && pairs - s.lastPairs >= lookEvery ? sequentialLook(s, b.evidence, design).state : s;
      if (next !== before) {
        state = next;
        changedStates.push({
          key: b.key,
          termSet: b.termSet,
          scope: b.scope,
          state,
          settledVerdict: state.settled?.verdict ?? null,
        });
      }
    }
    const support = { test: corroboration(b.counted), control: corroboration(b.counted) };
    const d = holdUncorroborated(
      decide(campaign.mode, f, state, design.judge.alpha),
      support,
      campaign.minIndependentProbes ?? 1,
    );
    const changes = detectChanges(b.windows, { judge: design.judge });
    const lastAdverse = [...changes.segments].reverse().find((s) => isFindingVerdict(s.verdict));
    const currentVerdict = changes.current?.verdict;
    const sendTimes = b.rows.map((r) => r.sendMs);
    writes.push({
      key: b.key,
      termSet: b.termSet,
      scope: b.scope,
      windowStart: new Date(Math.min(...sendTimes)),
      windowEnd: new Date(Math.max(...sendTimes)),
      verdict: d.verdict,
      kind: d.finding.kind,
      testTrials: d.finding.n_test,
      controlTrials: d.finding.n_control,
      testRate: d.finding.rate_test,
      controlRate: d.finding.rate_control,
      pValue: d.finding.p,
      qValue: d.finding.q,
      ciLow: d.finding.ci[0],
      ciHigh: d.finding.ci[1],
      diffCiLow: d.finding.ci_diff[0],
      diffCiHigh: d.finding.ci_diff[1],
      settled: d.settled,
      since: changes.current ? new Date(changes.current.since) : null,
      endedAt:
        lastAdverse && currentVerdict !== undefined && !isFindingVerdict(currentVerdict)
          ? new Date(lastAdverse.to)
          : null,
      detail: {
        segments: changes.segments.map((s) => ({
          from: new Date(s.from).toISOString(),
          to: new Date(s.to).toISOString(),
          verdict: s.verdict,
        })),
        outage_windows: changes.outages.length,
        ...(d.finding.latency ? { latency: d.finding.latency } : {}),
        ...(state?.settled
          ? { sequential: { verdict: state.settled.verdict, pairs: state.settled.atPairs } }
          : {}),
      },
      independentProbes: support,
    });
  }
  const final = markMinimal(writes);
  return db.transaction(async (tx) => {
    if (!(await tryLockCampaign(tx, campaign.id, 'findings'))) return { ran: false, findings: 0, settled: 0 };
    // another collector looked since this one read: its states are newer, skip this sweep
    if (!sameStates(stored, await sequentialStates(tx, campaign.id))) {
      return { ran: false, findings: 0, settled: 0 };
    }
    await saveSequentialStates(tx, campaign.id, changedStates);
    await upsertFindings(tx, campaign.id, final);
    return { ran: true, findings: final.length, settled: final.filter((w) => w.settled).length };
  });
}

/** Whether the stored sequential states are still those a recomputation read. */
function sameStates(
  read: ReadonlyMap<string, StoredSequentialState>,
  now: readonly StoredSequentialState[],
): boolean {
  return (
    now.length === read.size &&
    now.every((s) => JSON.stringify(read.get(s.key)?.state) === JSON.stringify(s.state))
  );
}

/** The sweep's step: recompute the findings of every active (or just ended) campaign. */
export async function recomputeFindings(
  db: Db,
  now: Date,
  options: FindingsOptions = {},
  log?: Logger,
): Promise<number> {
  let total = 0;
  for (const c of await campaignsToJudge(db, now, 24 * 3600_000)) {
    try {
      const r = await recomputeCampaignFindings(db, c, now, options);
      total += r.findings;
    } catch (err) {
      log?.error({ err, campaign: c.id }, 'findings recomputation failed');
    }
  }
  return total;
}

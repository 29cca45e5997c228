/**
 * Findings: per campaign, term set and scope (platform, conversation kind, sender region,
 * recipient region), tests against their paired controls from the same windows, judged
 * together with Benjamini–Hochberg across the campaign (collector/analysis `judgeAll`), with
 * adaptive stopping (`sequentialLook`, state in Postgres) and onset/end (`detectChanges`).
 *
 * Judged incrementally (decision 028): each sweep judges again only the term set × scopes whose
 * outcomes changed or whose deadlines passed since the last sweep, and runs the campaign-wide
 * step (BH, sequential looks, minimality) over those and the stored judgments of the rest;
 * idempotent upserts by campaign × key, under a per-campaign advisory lock that a second
 * collector skips instead of waiting for.
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
  type Evidence,
  type FamilyMember,
  type Finding,
  INITIAL_SEQUENTIAL_STATE,
  judgeFamily,
  judgeMember,
  newcombeDifference,
  noYield,
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
  type StoredSequentialState,
  saveSequentialStates,
  screenClearedKeys,
  sequentialStates,
  tryLockCampaign,
  upsertFindings,
} from './db/findings.ts';
import { type FollowupStep, testSendTimes } from './db/followups.ts';
import {
  type BacklogCell,
  finishJudging,
  judgingVersion,
  markChanges,
  markedCount,
  markForJudging,
  oldestMarked,
  pairedOutcomesOfCells,
  storedJudgments,
} from './db/judging.ts';
import type { Db, Queryable } from './db/open.ts';
import { canonicalTermSet, findingKey, parseFindingKey, scopeKey } from './keys.ts';
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
  /** Term set × scope cells judged at most per sweep and campaign, oldest change first (default 500). */
  maxKeys?: number;
  /** Changed outcomes (and passed deadlines) marked at most per sweep and campaign (default 20,000). */
  scanRows?: number;
}

/**
 * The sequential design and grace a sweep judges a campaign with: the options' own, else
 * DEFAULT_SEQUENTIAL_DESIGN and the campaign's deadline. Rounds top scopes up by the same
 * (rounds.ts), and follow-ups read their results after the same default grace (followups.ts).
 */
export function sweepRules(
  options: Pick<FindingsOptions, 'design' | 'graceMs'>,
  campaign: { deadlineSeconds: number },
): { design: SequentialDesign; graceMs: number } {
  return {
    design: { ...DEFAULT_SEQUENTIAL_DESIGN, ...options.design },
    graceMs: options.graceMs ?? campaign.deadlineSeconds * 1000,
  };
}

const DEFAULT_MAX_KEYS = 500;
const DEFAULT_SCAN_ROWS = 20_000;

export const FINDING_VERDICTS: readonly Verdict[] = ['suppressed', 'delayed', 'rejected', 'altered'];
export const isFindingVerdict = (v: string) => (FINDING_VERDICTS as readonly string[]).includes(v);

interface Group {
  key: string;
  termSet: string[];
  scope: FindingScope;
  rows: PairedOutcome[];
  /** The spellings (term orders) of the term set among the rows, each once. */
  spellings: string[][];
}

/**
 * Paired outcomes grouped by term set × scope. The key is built once per spelling and scope, not
 * per row (a cell holds months of pairs in one or two spellings); `tick` is awaited between rows
 * to give the event loop a turn (collector/yield.ts).
 */
export async function groupPairs(
  pairs: readonly PairedOutcome[],
  tick: () => Promise<void> = noYield,
): Promise<Group[]> {
  const groups = new Map<string, Group>();
  const bySpelling = new Map<string, Group>();
  for (const [i, p] of pairs.entries()) {
    if ((i & 1023) === 1023) await tick();
    const spelling = JSON.stringify([p.termSet, p.platform, p.kind, p.senderRegion, p.recipientRegion]);
    let g = bySpelling.get(spelling);
    if (!g) {
      const scope: FindingScope = {
        platform: p.platform,
        conversation_kind: p.kind,
        sender_region: p.senderRegion,
        recipient_region: p.recipientRegion,
      };
      const key = findingKey(p.termSet, scope);
      g = groups.get(key);
      if (!g) {
        g = { key, termSet: canonicalTermSet(p.termSet), scope, rows: [], spellings: [] };
        groups.set(key, g);
      }
      g.spellings.push(p.termSet);
      bySpelling.set(spelling, g);
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
  const written = screenClearances(run, sets, result, steps, await testSendTimes(q, pairs));
  await upsertFindings(q, campaignId, written);
  // Judged again at the next sweep: round pairs that point to a finding overwrite a clearance.
  await markForJudging(
    q,
    campaignId,
    written.map((w) => ({
      termSet: w.termSet,
      platform: w.scope.platform,
      kind: w.scope.conversation_kind,
      senderRegion: w.scope.sender_region,
      recipientRegion: w.scope.recipient_region,
    })),
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
  /** False when another collector held the campaign's lock, or wrote since this sweep read. */
  ran: boolean;
  /** Findings written (new or changed). */
  findings: number;
  /** Of the campaign's term set × scopes with evidence, how many are settled (0 when none was judged). */
  settled: number;
  /** Term set × scopes whose pairs this sweep read and judged again. */
  keysJudged: number;
  /** Paired outcome rows this sweep read. */
  pairsRead: number;
  /** Marked cells left for later sweeps. */
  backlog: number;
}

/**
 * What the campaign-wide step needs of one term set × scope, kept (table judgments) so that a
 * sweep reads only the pairs of cells that changed: the finding with and without the family's
 * rejection (`judgeMember`), the times, change-points and corroboration of its evidence.
 */
interface Judged {
  member: FamilyMember;
  termSet: string[];
  scope: FindingScope;
  windowStart: number;
  windowEnd: number;
  since: number | null;
  endedAt: number | null;
  segments: { from: string; to: string; verdict: string }[];
  outages: number;
  support: { test: Corroboration; control: Corroboration };
}

// JSON without losing NaN and ±Infinity (a finding's intervals and p can be either).
const encode = (x: unknown) =>
  JSON.stringify(x, (_k, v) => (typeof v === 'number' && !Number.isFinite(v) ? { $n: String(v) } : v));
const decode = <T>(s: string): T =>
  JSON.parse(s, (_k, v) =>
    v !== null && typeof v === 'object' && typeof v.$n === 'string' && Object.keys(v).length === 1
      ? Number(v.$n)
      : v,
  ) as T;

/**
 * A group's judgment (everything of its finding that does not depend on the rest of the family),
 * giving the event loop a turn between its steps (a cell can hold months of pairs).
 */
async function judgeGroup(
  g: Group,
  design: SequentialDesign,
  tick: () => Promise<void>,
): Promise<{ judged: Judged; evidence: Evidence }> {
  const { windows, evidence, counted } = await pairedEvidence(g.rows, tick);
  await tick();
  const changes = detectChanges(windows, { judge: design.judge });
  await tick();
  const lastAdverse = [...changes.segments].reverse().find((s) => isFindingVerdict(s.verdict));
  const currentVerdict = changes.current?.verdict;
  let windowStart = Number.POSITIVE_INFINITY;
  let windowEnd = Number.NEGATIVE_INFINITY;
  for (const r of g.rows) {
    windowStart = Math.min(windowStart, r.sendMs);
    windowEnd = Math.max(windowEnd, r.sendMs);
  }
  const c = corroboration(counted);
  await tick();
  return {
    evidence,
    judged: {
      member: judgeMember(evidence, design.judge),
      termSet: g.termSet,
      scope: g.scope,
      windowStart,
      windowEnd,
      since: changes.current ? changes.current.since : null,
      endedAt:
        lastAdverse && currentVerdict !== undefined && !isFindingVerdict(currentVerdict)
          ? lastAdverse.to
          : null,
      segments: changes.segments.map((s) => ({
        from: new Date(s.from).toISOString(),
        to: new Date(s.to).toISOString(),
        verdict: s.verdict,
      })),
      outages: changes.outages.length,
      support: { test: c, control: c },
    },
  };
}

interface Member {
  key: string;
  judged: Judged;
  /** Present when this sweep read the pairs. */
  evidence?: Evidence;
}

/**
 * The campaign-wide step over every term set × scope with evidence (no I/O): BH over the family,
 * the sequential look where new pairs allow one, the stored decision, corroboration, minimality.
 * A member whose look needs its evidence but was not read this sweep (only after `reviseSettled`
 * dropped its decision) is returned in `needEvidence` instead. Gives the event loop a turn
 * between members (`tick`): a campaign of 500 term sets over 28 scopes has 14,000.
 */
async function judgeCampaign(
  members: readonly Member[],
  campaign: { mode: CampaignMode; minIndependentProbes?: number },
  stored: ReadonlyMap<string, StoredSequentialState>,
  cleared: ReadonlySet<string>,
  design: SequentialDesign,
  lookEvery: number,
  tick: () => Promise<void>,
): Promise<{ writes: FindingWrite[]; changedStates: StoredSequentialState[]; needEvidence: string[] }> {
  const current = judgeFamily(
    members.map((m) => m.judged.member),
    design.judge,
  );
  const changedStates: StoredSequentialState[] = [];
  const needEvidence: string[] = [];
  const writes: Omit<FindingWrite, 'minimal'>[] = [];
  for (const [i, m] of members.entries()) {
    await tick();
    const f = current[i];
    if (!f) continue;
    const b = m.judged;
    // A screen's clearance stands against incidental round pairs (a set sent for another
    // recipient region of the same conversation) unless they point to a finding.
    if (cleared.has(m.key) && !isFindingVerdict(f.verdict)) continue;
    let state = stored.get(m.key)?.state;
    if (campaign.mode !== 'monitor') {
      const before = state ?? INITIAL_SEQUENTIAL_STATE;
      const s = reviseSettled(before, f.verdict);
      const pairs = Math.min(f.n_test, f.n_control);
      let next = s;
      if (!s.settled && pairs - s.lastPairs >= lookEvery) {
        if (m.evidence) next = sequentialLook(s, m.evidence, design).state;
        else if (pairs >= design.minPairs && pairs > s.lastPairs) needEvidence.push(m.key);
      }
      if (next !== before) {
        state = next;
        changedStates.push({
          key: m.key,
          termSet: b.termSet,
          scope: b.scope,
          state,
          settledVerdict: state.settled?.verdict ?? null,
        });
      }
    }
    const d = holdUncorroborated(
      decide(campaign.mode, f, state, design.judge.alpha),
      b.support,
      campaign.minIndependentProbes ?? 1,
    );
    writes.push({
      key: m.key,
      termSet: b.termSet,
      scope: b.scope,
      windowStart: new Date(b.windowStart),
      windowEnd: new Date(b.windowEnd),
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
      since: b.since === null ? null : new Date(b.since),
      endedAt: b.endedAt === null ? null : new Date(b.endedAt),
      detail: {
        segments: b.segments,
        outage_windows: b.outages,
        ...(d.finding.latency ? { latency: d.finding.latency } : {}),
        ...(state?.settled
          ? { sequential: { verdict: state.settled.verdict, pairs: state.settled.atPairs } }
          : {}),
      },
      independentProbes: b.support,
    });
  }
  return { writes: markMinimal(writes), changedStates, needEvidence };
}

/** The cells (as the canaries spell them) whose pairs make up these keys' evidence. */
function cellsOf(keys: Iterable<string>, spellings: ReadonlyMap<string, readonly string[][]>): BacklogCell[] {
  const out: BacklogCell[] = [];
  for (const key of keys) {
    const { scope } = parseFindingKey(key);
    for (const termSet of spellings.get(key) ?? []) {
      out.push({
        termSet,
        platform: scope.platform,
        kind: scope.conversation_kind,
        senderRegion: scope.sender_region,
        recipientRegion: scope.recipient_region,
      });
    }
  }
  return out;
}

const cellKey = (c: BacklogCell) =>
  findingKey(c.termSet, {
    platform: c.platform,
    conversation_kind: c.kind,
    sender_region: c.senderRegion,
    recipient_region: c.recipientRegion,
  });

/**
 * Judges what changed in one campaign since its last sweep and stores its findings (decision
 * 028): marks the term set × scope cells whose outcomes were written or whose deadlines passed
 * since then (collector/db/judging.ts), reads the pairs of at most `maxKeys` of them (oldest
 * first; the rest the next sweep), judges those, and runs the campaign-wide step (BH, sequential
 * looks, minimality) over them and the stored judgments of the others. A sweep with nothing
 * marked reads no pairs and writes nothing. Findings come out as one recomputation from all
 * pairs would make them once the marked cells are judged (collector/judging.test.ts).
 *
 * Reads and judges outside a transaction, giving the event loop a turn every 20 ms; the write
 * takes the campaign's lock and happens only if no other sweep wrote since this one read.
 */
export async function recomputeCampaignFindings(
  db: Db,
  campaign: { id: string; mode: CampaignMode; deadlineSeconds: number; minIndependentProbes?: number },
  now: Date,
  options: FindingsOptions = {},
): Promise<CampaignFindingsResult> {
  const { design, graceMs } = sweepRules(options, campaign);
  const lookEvery = options.lookEvery ?? 4;
  const before = new Date(now.getTime() - graceMs);
  const skipped = { ran: false, findings: 0, settled: 0, keysJudged: 0, pairsRead: 0, backlog: 0 };
  // The rules the stored judgments were made with: other rules judge everything again.
  const rules = JSON.stringify({
    mode: campaign.mode,
    minIndependentProbes: campaign.minIndependentProbes ?? 1,
    graceMs,
    design,
    lookEvery,
  });
  const marked = await db.transaction(async (tx) => {
    if (!(await tryLockCampaign(tx, campaign.id, 'findings'))) return false;
    await markChanges(tx, campaign.id, rules, before, options.scanRows ?? DEFAULT_SCAN_ROWS);
    return true;
  });
  if (!marked) return skipped;
  // Read first: any write after it moves the version on, and this sweep's write is skipped.
  const version = await judgingVersion(db, campaign.id);
  const taken = await oldestMarked(db, campaign.id, options.maxKeys ?? DEFAULT_MAX_KEYS);
  if (taken.length === 0) return { ...skipped, ran: true };

  const tick = yielder();
  const members = new Map<string, Member>();
  const spellings = new Map<string, string[][]>();
  const written = new Map<string, string | null>();
  for (const j of await storedJudgments(db, campaign.id)) {
    members.set(j.key, { key: j.key, judged: decode<Judged>(j.judged) });
    spellings.set(j.key, j.termSets);
    written.set(j.key, j.written);
    await tick();
  }
  const addSpelling = (key: string, termSet: string[]) => {
    const list = spellings.get(key) ?? [];
    if (!list.some((t) => t.length === termSet.length && t.every((x, i) => x === termSet[i])))
      list.push(termSet);
    spellings.set(key, list);
  };
  for (const c of taken) addSpelling(cellKey(c), c.termSet);

  const fresh = new Set<string>();
  const gone = new Set<string>();
  let pairsRead = 0;
  /** Reads and judges these keys' pairs. */
  const judgeKeys = async (keys: readonly string[]) => {
    const pairs = await pairedOutcomesOfCells(db, campaign.id, cellsOf(keys, spellings), before);
    pairsRead += pairs.length;
    const seen = new Set<string>();
    for (const g of await groupPairs(pairs, tick)) {
      seen.add(g.key);
      for (const t of g.spellings) addSpelling(g.key, t);
      const { judged, evidence } = await judgeGroup(g, design, tick);
      members.set(g.key, { key: g.key, judged, evidence });
      fresh.add(g.key);
      gone.delete(g.key);
      await tick();
    }
    for (const key of keys) {
      if (seen.has(key)) continue;
      // no pairs (yet, or a follow-up's cell): not in the family
      if (members.delete(key)) gone.add(key);
    }
  };
  await judgeKeys([...new Set(taken.map(cellKey))]);

  const stored = new Map((await sequentialStates(db, campaign.id)).map((s) => [s.key, s]));
  const cleared = await screenClearedKeys(db, campaign.id);
  let step = await judgeCampaign([...members.values()], campaign, stored, cleared, design, lookEvery, tick);
  // A dropped decision looks again at once, from evidence this sweep did not read: read it.
  while (step.needEvidence.length > 0) {
    await judgeKeys(step.needEvidence);
    await tick();
    step = await judgeCampaign([...members.values()], campaign, stored, cleared, design, lookEvery, tick);
  }
  // Unchanged findings are not written again (BH moves many q-values, not all). Encoding every
  // finding of a large campaign takes longer than a turn: the event loop gets turns between.
  const changed: { w: FindingWrite; text: string }[] = [];
  for (const w of step.writes) {
    await tick();
    const text = encode(w);
    if (fresh.has(w.key) || written.get(w.key) !== text) changed.push({ w, text });
  }
  const judgments: { key: string; termSets: string[][]; judged: string; written: null }[] = [];
  for (const key of fresh) {
    await tick();
    judgments.push({
      key,
      termSets: spellings.get(key) ?? [],
      judged: encode(members.get(key)?.judged),
      written: null,
    });
  }
  const result = await db.transaction(async (tx) => {
    if (!(await tryLockCampaign(tx, campaign.id, 'findings'))) return false;
    // a clearance written since this sweep read stands as before (see judgeCampaign)
    const clearedNow = await screenClearedKeys(tx, campaign.id);
    const writes = changed.filter(({ w }) => !clearedNow.has(w.key) || isFindingVerdict(w.verdict));
    const ok = await finishJudging(tx, campaign.id, version, {
      judgments,
      gone: [...gone],
      written: writes.map(({ w, text }) => ({ key: w.key, written: text })),
      marks: taken.map((t) => t.mark),
    });
    if (!ok) return false;
    await saveSequentialStates(tx, campaign.id, step.changedStates);
    await upsertFindings(
      tx,
      campaign.id,
      writes.map(({ w }) => w),
    );
    return { findings: writes.length, backlog: await markedCount(tx, campaign.id) };
  });
  if (!result) return skipped;
  return {
    ran: true,
    findings: result.findings,
    settled: step.writes.filter((w) => w.settled).length,
    keysJudged: fresh.size + gone.size,
    pairsRead,
    backlog: result.backlog,
  };
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
      if (r.keysJudged > 0) {
        const { keysJudged, pairsRead, backlog, findings } = r;
        log?.debug({ campaign: c.id, keysJudged, pairsRead, backlog, findings }, 'findings judged');
      }
    } catch (err) {
      log?.error({ err, campaign: c.id }, 'findings recomputation failed');
    }
  }
  return total;
}

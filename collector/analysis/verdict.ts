/**
 * Verdicts for one term set in one scope: test canaries against their paired controls sent in
 * the same windows. See README.md for the decision rule and its error rates.
 */
import type { CanaryKind, OutcomeStatus, Verdict } from '../../protocol/outcomes.ts';
import {
  benjaminiHochberg,
  fisherExact,
  type Interval,
  mannWhitneyGreater,
  newcombeDifference,
  quantile,
  wilson,
} from './stats.ts';

export type { Verdict };

/** Finalised outcomes of one arm (`failed` and `pending` excluded by the caller). */
export interface ArmCounts {
  delivered: number;
  delayed: number;
  missing: number;
  altered: number;
  rejected: number;
}

export interface Evidence {
  test: ArmCounts;
  control: ArmCounts;
  /** Delivery latencies (ms) of test canaries that arrived (delivered or delayed). */
  latencyTestMs?: readonly number[];
  /** Delivery latencies (ms) of control canaries that arrived. */
  latencyControlMs?: readonly number[];
}

export interface JudgeOptions {
  /** False discovery rate (BH) or, for a single judgement, the significance level. Default 0.05. */
  alpha: number;
  /** Minimum point difference test − control in the adverse-outcome rate for a finding. Default 0.1. */
  minEffect: number;
  /** `none` needs the upper confidence bound of the difference in adverse rate below this. Default 0.2. */
  margin: number;
  /** `delayed` by latency needs median test latency > latencyFactor × control p95. Default 2. */
  latencyFactor: number;
  /**
   * … and median test latency ≥ control p95 + this. Default 1000 ms: without it, latencies
   * near zero (a probe that sends and receives on one clock: 0–2 ms) made a 1 ms median "twice"
   * a 0 ms p95, and that effect alone blocked every `none`.
   */
  minDelayMs: number;
  /** Minimum arrived samples per arm before latency is tested. Default 5. */
  minLatencySamples: number;
  /** Confidence level of the reported intervals (and of the `none` bound). Default 0.95. */
  confidence: number;
}

export const DEFAULT_JUDGE_OPTIONS: JudgeOptions = {
  alpha: 0.05,
  minEffect: 0.1,
  margin: 0.2,
  latencyFactor: 2,
  minDelayMs: 1000,
  minLatencySamples: 5,
  confidence: 0.95,
};

/** The outcome kinds a finding can be about; `adverse` = anything but delivered-in-time. */
export type FindingKind = 'missing' | 'delayed' | 'rejected' | 'altered' | 'adverse';

export interface Finding {
  verdict: Verdict;
  kind: FindingKind;
  rate_test: number;
  rate_control: number;
  /** Wilson interval of rate_test. */
  ci: Interval;
  /** Newcombe interval of rate_test − rate_control. */
  ci_diff: Interval;
  /** One-sided p: min of (Fisher on adverse outcomes, Mann–Whitney on latency) × 2 (Bonferroni). */
  p: number;
  /** BH-adjusted p across the family passed to judgeAll (equals p for a single judge). */
  q: number;
  n_test: number;
  n_control: number;
  latency?: { median_test_ms: number; p95_control_ms: number; p: number };
}

const KIND_VERDICT: Record<Exclude<FindingKind, 'adverse'>, Verdict> = {
  missing: 'suppressed',
  delayed: 'delayed',
  rejected: 'rejected',
  altered: 'altered',
};

/** One finalised outcome row as the collector stores it (per canary and recipient). */
export interface OutcomeRow {
  kind: CanaryKind;
  status: OutcomeStatus;
  /** Receipt time − send time, when the canary arrived. */
  latencyMs?: number | null;
}

/** Counts being added up by `addOutcome`; latencies are kept when the arrays are there. */
export interface EvidenceTally {
  test: ArmCounts;
  control: ArmCounts;
  latencyTestMs?: number[];
  latencyControlMs?: number[];
}

/** Evidence with nothing counted yet, for `addOutcome`; `latencies: false` counts only. */
export function emptyEvidence(latencies = true): EvidenceTally {
  const arm = (): ArmCounts => ({ delivered: 0, delayed: 0, missing: 0, altered: 0, rejected: 0 });
  return latencies
    ? { test: arm(), control: arm(), latencyTestMs: [], latencyControlMs: [] }
    : { test: arm(), control: arm() };
}

/**
 * Counts one outcome into `e` (from `emptyEvidence`); `failed` and `pending` are left out. The one
 * counting rule of `buildEvidence`, for callers that count without building row objects.
 */
export function addOutcome(
  e: EvidenceTally,
  kind: CanaryKind,
  status: OutcomeStatus,
  latencyMs: number | null | undefined,
): void {
  if (status === 'failed' || status === 'pending') return;
  e[kind][status] += 1;
  const arrived = status === 'delivered' || status === 'delayed' || status === 'altered';
  if (arrived && typeof latencyMs === 'number')
    (kind === 'test' ? e.latencyTestMs : e.latencyControlMs)?.push(latencyMs);
}

/** Evidence from outcome rows of one term set × scope; `failed` and `pending` rows are left out. */
export function buildEvidence(rows: Iterable<OutcomeRow>): Evidence {
  const e = emptyEvidence();
  for (const r of rows) addOutcome(e, r.kind, r.status, r.latencyMs);
  return e;
}

export function armTotal(a: ArmCounts): number {
  return a.delivered + a.delayed + a.missing + a.altered + a.rejected;
}

function adverse(a: ArmCounts): number {
  return armTotal(a) - a.delivered;
}

interface LatencyAssessment {
  median_test_ms: number;
  p95_control_ms: number;
  p: number;
  /** Effect size met: median test latency > latencyFactor × control p95. */
  effect: boolean;
}

function latencyTest(e: Evidence, o: JudgeOptions): LatencyAssessment {
  // A negative latency is clock error (offsets corrected to the millisecond): count it as 0.
  const t = (e.latencyTestMs ?? []).map((x) => Math.max(0, x));
  const c = (e.latencyControlMs ?? []).map((x) => Math.max(0, x));
  if (t.length < o.minLatencySamples || c.length < o.minLatencySamples) {
    return { median_test_ms: Number.NaN, p95_control_ms: Number.NaN, p: 1, effect: false };
  }
  const median = quantile(t, 0.5);
  const p95 = quantile(c, 0.95);
  const effect = median > o.latencyFactor * p95 && median - p95 >= (o.minDelayMs ?? 0);
  // The latency test rejects only when the rank test AND the effect size agree (still level ≤ the
  // rank test's), so the rank test is skipped when the effect size is not met.
  return {
    median_test_ms: median,
    p95_control_ms: p95,
    p: effect ? mannWhitneyGreater(t, c).pGreater : 1,
    effect,
  };
}

interface Assessment {
  nTest: number;
  nControl: number;
  /** One-sided Fisher p for adverse (not delivered intact in time) outcomes, test > control. */
  pAdverse: number;
  latency: LatencyAssessment;
  /** Bonferroni over the two primary tests (adverse counts, latency). */
  pFamily: number;
  /** Which test carries the evidence and the outcome kind it points to. */
  kind: Exclude<FindingKind, 'adverse'>;
  effectOk: boolean;
}

const KINDS = ['missing', 'rejected', 'altered', 'delayed'] as const;

function assess(e: Evidence, o: JudgeOptions): Assessment {
  const nTest = armTotal(e.test);
  const nControl = armTotal(e.control);
  const at = adverse(e.test);
  const ac = adverse(e.control);
  const pAdverse = nTest && nControl ? fisherExact(at, nTest - at, ac, nControl - ac).greater : 1;
  const latency = latencyTest(e, o);
  const pFamily = Math.min(1, 2 * Math.min(pAdverse, latency.p));
  const adverseDiff = nTest && nControl ? at / nTest - ac / nControl : 0;
  if (latency.p < pAdverse)
    return { nTest, nControl, pAdverse, latency, pFamily, kind: 'delayed', effectOk: true };
  // attribute the adverse excess to the outcome kind with the largest excess rate
  const excess = (k: (typeof KINDS)[number]) =>
    nTest && nControl ? e.test[k] / nTest - e.control[k] / nControl : 0;
  const kind = KINDS.reduce((x, y) => (excess(y) > excess(x) ? y : x));
  return { nTest, nControl, pAdverse, latency, pFamily, kind, effectOk: adverseDiff >= o.minEffect };
}

/**
 * Build the finding for an assessment. `rejectNull` says whether the (adjusted) p passed its
 * threshold; `q` is what is reported; `noneConfidence` is the level of the bound used for `none`.
 */
function decide(
  e: Evidence,
  a: Assessment,
  rejectNull: boolean,
  q: number,
  o: JudgeOptions,
  noneConfidence: number,
): Finding {
  const { nTest, nControl } = a;
  const significant = rejectNull && a.effectOk && nTest > 0 && nControl > 0;
  const kind: FindingKind = significant ? a.kind : 'adverse';
  const kt = kind === 'adverse' ? adverse(e.test) : e.test[kind];
  const kc = kind === 'adverse' ? adverse(e.control) : e.control[kind];
  const rateTest = nTest ? kt / nTest : 0;
  const rateControl = nControl ? kc / nControl : 0;
  let verdict: Verdict;
  if (significant) verdict = KIND_VERDICT[a.kind];
  else if (nTest === 0 || nControl === 0) verdict = 'inconclusive';
  else {
    const [, upper] = newcombeDifference(kt, nTest, kc, nControl, noneConfidence);
    verdict = upper < o.margin && !a.latency.effect ? 'none' : 'inconclusive';
  }
  const finding: Finding = {
    verdict,
    kind,
    rate_test: rateTest,
    rate_control: rateControl,
    ci: wilson(kt, nTest, o.confidence),
    ci_diff: newcombeDifference(kt, nTest, kc, nControl, o.confidence),
    p: a.pFamily,
    q,
    n_test: nTest,
    n_control: nControl,
  };
  if (Number.isFinite(a.latency.median_test_ms)) {
    const { effect: _effect, ...latency } = a.latency;
    finding.latency = latency;
  }
  return finding;
}

/** Judge one term set × scope on its own (q = p). */
export function judge(evidence: Evidence, options: Partial<JudgeOptions> = {}): Finding {
  const o = { ...DEFAULT_JUDGE_OPTIONS, ...options };
  const a = assess(evidence, o);
  return decide(evidence, a, a.pFamily <= o.alpha, a.pFamily, o, o.confidence);
}

/**
 * Judge a family of term set × scope evidences together: q-values by Benjamini–Hochberg over the
 * family, verdicts at FDR `alpha`. Output order = input order.
 */
export function judgeAll(evidences: readonly Evidence[], options: Partial<JudgeOptions> = {}): Finding[] {
  return judgeFamily(
    evidences.map((e) => judgeMember(e, options)),
    options,
  );
}

/**
 * One member of a family judged apart from the others: its p and the finding it gets when the
 * family's BH rejects its null and when it does not (q still to be filled in). `judgeFamily`
 * over members equals `judgeAll` over their evidence, so a member can be stored and the family
 * judged again when another member changes, without this member's evidence.
 */
export interface FamilyMember {
  p: number;
  rejected: Finding;
  kept: Finding;
}

export function judgeMember(evidence: Evidence, options: Partial<JudgeOptions> = {}): FamilyMember {
  const o = { ...DEFAULT_JUDGE_OPTIONS, ...options };
  const a = assess(evidence, o);
  return {
    p: a.pFamily,
    rejected: decide(evidence, a, true, a.pFamily, o, o.confidence),
    kept: decide(evidence, a, false, a.pFamily, o, o.confidence),
  };
}

/** Findings of a family of members: q by Benjamini–Hochberg over their p, verdicts at FDR `alpha`. */
export function judgeFamily(
  members: readonly FamilyMember[],
  options: Partial<JudgeOptions> = {},
): Finding[] {
  const o = { ...DEFAULT_JUDGE_OPTIONS, ...options };
  const q = benjaminiHochberg(members.map((m) => m.p));
  return members.map((m, i) => ({ ...(q[i]! <= o.alpha ? m.rejected : m.kept), q: q[i]! }));
}

/**
 * One look of a sequential design: the same decision rule, with this look's share of alpha for
 * the significance test and `noneConfidence` for the `none` bound.
 */
export function judgeAtLook(
  evidence: Evidence,
  options: JudgeOptions,
  alphaLook: number,
  noneConfidence: number,
): Finding {
  const a = assess(evidence, options);
  return decide(evidence, a, a.pFamily <= alphaLook, a.pFamily, options, noneConfidence);
}

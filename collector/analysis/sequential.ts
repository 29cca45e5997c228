/**
 * Adaptive stopping: a group-sequential design with Lan–DeMets error spending, per term set ×
 * scope. At every look the verdict rule of verdict.ts is applied with this look's share of alpha
 * (for a finding) and of beta (for `none`). Error rates are bounded by the union bound over looks:
 *   P(finding | no effect) ≤ Σ alpha_k = alpha   (Fisher's exact test is valid at every look),
 *   P(none | effect ≥ margin) ≤ Σ beta_k = beta  (to the accuracy of Newcombe's interval).
 * A share of beta (`finalBetaShare`) is kept for the forced look at `maxPairs`: the union bound
 * still holds (the looks before spend (1 − share)·beta at most, the last one the rest).
 * The state is plain JSON: store it beside the term set × scope and pass it back at the next look.
 */
import { normalCdf, normalQuantile } from './stats.ts';
import {
  armTotal,
  DEFAULT_JUDGE_OPTIONS,
  type Evidence,
  type Finding,
  type JudgeOptions,
  judgeAtLook,
  type Verdict,
} from './verdict.ts';

export type Spending = 'pocock' | 'obrien-fleming';

export interface SequentialDesign {
  /** Type I error: a finding (any verdict but none) when test and control do not differ. */
  alpha: number;
  /** Type II error: `none` when the adverse rate of the test exceeds the control by ≥ margin. */
  beta: number;
  /** Smallest difference in adverse rate worth detecting (also the `none` margin). */
  margin: number;
  /** Pairs (min of test and control counts) at which all error is spent and a verdict is forced. */
  maxPairs: number;
  /** Minimum pairs before any look may stop. */
  minPairs: number;
  spending: Spending;
  /**
   * Share of beta kept for the look at maxPairs; the looks before it spend the rest along the
   * spending function. Without it the forced last look has almost no beta left (about 0.003 of
   * 0.1 after 20 Pocock looks) and ends `inconclusive` on evidence that is plainly no effect
   * (7 of 80 test canaries lost against 1 of 80: upper bound 0.195 at that level, 0.17 with
   * the reserve); `bench/sequential.ts` prints what it costs in pairs.
   */
  finalBetaShare: number;
  judge: JudgeOptions;
}

export const DEFAULT_SEQUENTIAL_DESIGN: SequentialDesign = {
  alpha: 0.05,
  beta: 0.1,
  margin: 0.2,
  maxPairs: 80,
  minPairs: 4,
  spending: 'pocock',
  finalBetaShare: 0.25,
  judge: DEFAULT_JUDGE_OPTIONS,
};

export interface SequentialState {
  looks: number;
  alphaSpent: number;
  betaSpent: number;
  /** Pairs seen at the last look; a look with no new pairs spends nothing. */
  lastPairs: number;
  settled?: { verdict: Verdict; finding: Finding; atPairs: number };
}

export const INITIAL_SEQUENTIAL_STATE: SequentialState = {
  looks: 0,
  alphaSpent: 0,
  betaSpent: 0,
  lastPairs: 0,
};

export type SequentialDecision =
  | { kind: 'continue'; pairs: number; finding: Finding }
  | { kind: 'settled'; verdict: Verdict; finding: Finding; pairs: number };

/** Cumulative error to spend by information fraction t ∈ [0, 1] (Lan & DeMets 1983). */
export function spent(total: number, t: number, spending: Spending): number {
  const f = Math.min(1, Math.max(0, t));
  if (f === 0) return 0;
  if (spending === 'pocock') return total * Math.log(1 + (Math.E - 1) * f);
  const z = normalQuantile(1 - total / 2);
  return Math.min(total, 2 - 2 * normalCdf(z / Math.sqrt(f)));
}

/**
 * One look. Call after each round of canaries for this term set × scope with the cumulative
 * evidence; send more only while the decision is `continue`. Pure: returns the next state.
 */
export function sequentialLook(
  state: SequentialState,
  evidence: Evidence,
  design: Partial<SequentialDesign> = {},
): { state: SequentialState; decision: SequentialDecision } {
  const d = { ...DEFAULT_SEQUENTIAL_DESIGN, ...design };
  const judgeOptions: JudgeOptions = { ...d.judge, margin: d.margin };
  const pairs = Math.min(armTotal(evidence.test), armTotal(evidence.control));
  if (state.settled) {
    const s = state.settled;
    return { state, decision: { kind: 'settled', verdict: s.verdict, finding: s.finding, pairs: s.atPairs } };
  }
  if (pairs < d.minPairs || pairs <= state.lastPairs) {
    const finding = judgeAtLook(evidence, judgeOptions, 0, 1 - 1e-12);
    return { state, decision: { kind: 'continue', pairs, finding } };
  }
  const t = pairs / d.maxPairs;
  const final = t >= 1;
  const alphaTarget = final ? d.alpha : spent(d.alpha, t, d.spending);
  const betaTarget = final ? d.beta : (1 - d.finalBetaShare) * spent(d.beta, t, d.spending);
  const alphaLook = Math.max(0, alphaTarget - state.alphaSpent);
  const betaLook = Math.max(0, betaTarget - state.betaSpent);
  // `none` when the one-sided (1 − betaLook) upper bound is below the margin: two-sided level 1 − 2·betaLook
  const finding = judgeAtLook(
    evidence,
    judgeOptions,
    alphaLook,
    Math.min(1 - 1e-12, Math.max(0, 1 - 2 * betaLook)),
  );
  const next: SequentialState = {
    looks: state.looks + 1,
    alphaSpent: state.alphaSpent + alphaLook,
    betaSpent: state.betaSpent + betaLook,
    lastPairs: pairs,
  };
  if (finding.verdict !== 'inconclusive' || final) {
    next.settled = { verdict: finding.verdict, finding, atPairs: pairs };
    return { state: next, decision: { kind: 'settled', verdict: finding.verdict, finding, pairs } };
  }
  return { state: next, decision: { kind: 'continue', pairs, finding } };
}

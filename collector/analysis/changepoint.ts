/**
 * Onset and end of suppression for a monitored term set × scope: binary segmentation by
 * likelihood ratio over per-window (test, control) adverse counts, then a verdict per segment.
 *
 * Model: within a segment, test canaries are adverse (not delivered intact in time) with one
 * probability and controls with another (independent binomials). A split at window τ is kept when
 * twice the log-likelihood gain exceeds `penalty` × ln(canaries in the segment) (BIC-like: a split
 * adds two rates and a location) and both sides hold at least `minWindows` windows. Windows where
 * both arms mostly failed (an outage) carry no evidence and are left out of the fit; they are
 * reported inside the segment around them. Adjacent segments with the same verdict are merged.
 */
import {
  type ArmCounts,
  armTotal,
  type Evidence,
  type Finding,
  type JudgeOptions,
  judge,
  type Verdict,
} from './verdict.ts';

export interface WindowCounts {
  /** Window start and end (ms since epoch). */
  from: number;
  to: number;
  test: ArmCounts;
  control: ArmCounts;
}

export interface ChangepointOptions {
  /** Multiplier of ln(n) in the split penalty. Default 3. */
  penalty: number;
  /** Minimum windows on either side of a split. Default 2. */
  minWindows: number;
  /** A window is an outage (left out) when more than this share of both arms failed. Default 0.5. */
  outageShare: number;
  judge: Partial<JudgeOptions>;
}

export const DEFAULT_CHANGEPOINT_OPTIONS: ChangepointOptions = {
  penalty: 3,
  minWindows: 2,
  outageShare: 0.5,
  judge: {},
};

export interface Segment {
  /** Indices into the input windows, inclusive. */
  firstWindow: number;
  lastWindow: number;
  from: number;
  to: number;
  verdict: Verdict;
  finding: Finding;
}

export interface ChangepointResult {
  segments: Segment[];
  /** The latest segment's verdict and since when it holds ("suppressed since <time>"). */
  current: { verdict: Verdict; since: number } | undefined;
  /** Windows left out as outages. */
  outages: number[];
}

const adverseOf = (a: ArmCounts) => armTotal(a) - a.delivered;

function binomialLogLik(k: number, n: number): number {
  if (n === 0 || k === 0 || k === n) return 0;
  const p = k / n;
  return k * Math.log(p) + (n - k) * Math.log(1 - p);
}

interface Prefix {
  kt: number[];
  nt: number[];
  kc: number[];
  nc: number[];
}

function prefixSums(windows: readonly WindowCounts[]): Prefix {
  const p: Prefix = { kt: [0], nt: [0], kc: [0], nc: [0] };
  windows.forEach((w, i) => {
    p.kt.push(p.kt[i]! + adverseOf(w.test));
    p.nt.push(p.nt[i]! + armTotal(w.test));
    p.kc.push(p.kc[i]! + adverseOf(w.control));
    p.nc.push(p.nc[i]! + armTotal(w.control));
  });
  return p;
}

/** Log-likelihood of windows [a, b) as one segment. */
function segmentLogLik(p: Prefix, a: number, b: number): number {
  const d = (xs: number[]) => xs[b]! - xs[a]!;
  return binomialLogLik(d(p.kt), d(p.nt)) + binomialLogLik(d(p.kc), d(p.nc));
}

function split(p: Prefix, a: number, b: number, o: ChangepointOptions, out: number[]): void {
  if (b - a < 2 * o.minWindows) return;
  const whole = segmentLogLik(p, a, b);
  let best = -1;
  let bestGain = 0;
  for (let t = a + o.minWindows; t <= b - o.minWindows; t++) {
    const gain = segmentLogLik(p, a, t) + segmentLogLik(p, t, b) - whole;
    if (gain > bestGain) {
      bestGain = gain;
      best = t;
    }
  }
  const n = p.nt[b]! - p.nt[a]! + p.nc[b]! - p.nc[a]!;
  if (best < 0 || 2 * bestGain <= o.penalty * Math.log(Math.max(n, 2))) return;
  split(p, a, best, o, out);
  out.push(best);
  split(p, best, b, o, out);
}

function sumWindows(windows: readonly WindowCounts[]): { test: ArmCounts; control: ArmCounts } {
  const zero = (): ArmCounts => ({ delivered: 0, delayed: 0, missing: 0, altered: 0, rejected: 0 });
  const test = zero();
  const control = zero();
  for (const w of windows) {
    for (const k of Object.keys(test) as (keyof ArmCounts)[]) {
      test[k] += w.test[k];
      control[k] += w.control[k];
    }
  }
  return { test, control };
}

/**
 * A window where most canaries of *both* arms failed: a platform outage, no evidence either way.
 * The criterion is symmetric in the arms: leaving out windows by the controls alone would bias
 * the control rate downward (every window whose only control was lost would go).
 */
export function isOutage(w: WindowCounts, share = DEFAULT_CHANGEPOINT_OPTIONS.outageShare): boolean {
  const nt = armTotal(w.test);
  const nc = armTotal(w.control);
  return nt > 0 && nc > 0 && adverseOf(w.test) / nt > share && adverseOf(w.control) / nc > share;
}

/** Evidence summed over windows, outage windows left out (see `isOutage`). */
export function evidenceWithoutOutages(
  windows: readonly WindowCounts[],
  outageShare = DEFAULT_CHANGEPOINT_OPTIONS.outageShare,
): Evidence {
  return sumWindows(windows.filter((w) => !isOutage(w, outageShare)));
}

/** Segments with verdicts over a time-ordered series of windows. Pure. */
export function detectChanges(
  windows: readonly WindowCounts[],
  options: Partial<ChangepointOptions> = {},
): ChangepointResult {
  const o = { ...DEFAULT_CHANGEPOINT_OPTIONS, ...options };
  const outages: number[] = [];
  const kept: number[] = [];
  windows.forEach((w, i) => {
    (isOutage(w, o.outageShare) ? outages : kept).push(i);
  });
  if (kept.length === 0) return { segments: [], current: undefined, outages };
  const fit = kept.map((i) => windows[i]!);
  const cuts: number[] = [];
  split(prefixSums(fit), 0, fit.length, o, cuts);
  // boundaries in kept-window positions → ranges over the original windows (outages join the left side)
  const starts = [0, ...cuts];
  const ranges = starts.map((s, j) => {
    const end = j + 1 < starts.length ? starts[j + 1]! : fit.length;
    const first = j === 0 ? 0 : kept[s]!;
    const last = end < fit.length ? kept[end]! - 1 : windows.length - 1;
    return { first, last, keptWindows: kept.slice(s, end).map((i) => windows[i]!) };
  });
  const judged = ranges.map((r) => {
    const finding = judge(sumWindows(r.keptWindows), o.judge);
    return { ...r, finding };
  });
  const merged: typeof judged = [];
  for (const r of judged) {
    const prev = merged[merged.length - 1];
    if (prev && prev.finding.verdict === r.finding.verdict) {
      const keptWindows = [...prev.keptWindows, ...r.keptWindows];
      merged[merged.length - 1] = {
        first: prev.first,
        last: r.last,
        keptWindows,
        finding: judge(sumWindows(keptWindows), o.judge),
      };
    } else merged.push(r);
  }
  const segments: Segment[] = merged.map((r) => ({
    firstWindow: r.first,
    lastWindow: r.last,
    from: windows[r.first]!.from,
    to: windows[r.last]!.to,
    verdict: r.finding.verdict,
    finding: r.finding,
  }));
  const last = segments[segments.length - 1];
  return { segments, current: last && { verdict: last.verdict, since: last.from }, outages };
}

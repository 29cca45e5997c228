/**
 * Small, exact statistics used by the verdicts: Wilson and Newcombe intervals, Fisher's exact
 * test (hypergeometric, computed in log space), Benjamini–Hochberg q-values and a one-sided
 * Mann–Whitney U test for latency. Pure functions, no I/O.
 */

const LANCZOS = [
  0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61502916214059,
  12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7,
];

/** ln Γ(x) for x > 0 (Lanczos, g = 7; relative error about 1e-15). */
export function logGamma(x: number): number {
  if (x < 0.5) return Math.log(Math.PI / Math.abs(Math.sin(Math.PI * x))) - logGamma(1 - x);
  const z = x - 1;
  let sum = LANCZOS[0]!;
  for (let i = 1; i < LANCZOS.length; i++) sum += LANCZOS[i]! / (z + i);
  const t = z + 7.5;
  return 0.5 * Math.log(2 * Math.PI) + (z + 0.5) * Math.log(t) - t + Math.log(sum);
}

/** ln C(n, k). */
export function logChoose(n: number, k: number): number {
  if (k < 0 || k > n) return Number.NEGATIVE_INFINITY;
  return logGamma(n + 1) - logGamma(k + 1) - logGamma(n - k + 1);
}

/** Standard normal CDF Φ(x) (Cody-style erfc via W. J. Cody's rational fit through erf series). */
export function normalCdf(x: number): number {
  return 0.5 * erfc(-x / Math.SQRT2);
}

function erfc(x: number): number {
  // Numerical Recipes erfcc (Chebyshev), fractional error < 1.2e-7.
  const z = Math.abs(x);
  const t = 1 / (1 + 0.5 * z);
  const r =
    t *
    Math.exp(
      -z * z -
        1.26551223 +
        t *
          (1.00002368 +
            t *
              (0.37409196 +
                t *
                  (0.09678418 +
                    t *
                      (-0.18628806 +
                        t *
                          (0.27886807 +
                            t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))),
    );
  return x >= 0 ? r : 2 - r;
}

/** Inverse standard normal CDF (Acklam's rational approximation, relative error < 1.2e-9). */
export function normalQuantile(p: number): number {
  if (!(p > 0 && p < 1)) {
    if (p === 0) return Number.NEGATIVE_INFINITY;
    if (p === 1) return Number.POSITIVE_INFINITY;
    throw new RangeError(`normalQuantile: p must be in [0, 1], got ${p}`);
  }
  const a = [
    -39.69683028665376, 220.9460984245205, -275.9285104469687, 138.357751867269, -30.66479806614716,
    2.506628277459239,
  ];
  const b = [
    -54.47609879822406, 161.5858368580409, -155.6989798598866, 66.80131188771972, -13.28068155288572,
  ];
  const c = [
    -0.007784894002430293, -0.3223964580411365, -2.400758277161838, -2.549732539343734, 4.374664141464968,
    2.938163982698783,
  ];
  const d = [0.007784695709041462, 0.3224671290700398, 2.445134137142996, 3.754408661907416];
  const lo = 0.02425;
  const poly = (k: number[], x: number) => k.reduce((acc, v) => acc * x + v, 0);
  if (p < lo) {
    const q = Math.sqrt(-2 * Math.log(p));
    return poly(c, q) / (poly(d, q) * q + 1);
  }
  if (p > 1 - lo) {
    const q = Math.sqrt(-2 * Math.log(1 - p));
    return -poly(c, q) / (poly(d, q) * q + 1);
  }
  const q = p - 0.5;
  const r = q * q;
  return (poly(a, r) * q) / (poly(b, r) * r + 1);
}

export type Interval = readonly [number, number];

/** Wilson (1927) score interval for k successes in n trials at two-sided confidence `confidence`. */
export function wilson(k: number, n: number, confidence = 0.95): Interval {
  if (n <= 0) return [0, 1];
  if (k < 0 || k > n) throw new RangeError(`wilson: need 0 <= k <= n, got k=${k}, n=${n}`);
  const z = normalQuantile(1 - (1 - confidence) / 2);
  const p = k / n;
  const z2 = z * z;
  const denom = 1 + z2 / n;
  const centre = (p + z2 / (2 * n)) / denom;
  const half = (z / denom) * Math.sqrt((p * (1 - p)) / n + z2 / (4 * n * n));
  return [Math.max(0, centre - half), Math.min(1, centre + half)];
}

/**
 * Newcombe (1998) hybrid score interval ("method 10") for the difference of two independent
 * proportions k1/n1 − k2/n2, built from the two Wilson intervals.
 */
export function newcombeDifference(
  k1: number,
  n1: number,
  k2: number,
  n2: number,
  confidence = 0.95,
): Interval {
  if (n1 <= 0 || n2 <= 0) return [-1, 1];
  const p1 = k1 / n1;
  const p2 = k2 / n2;
  const [l1, u1] = wilson(k1, n1, confidence);
  const [l2, u2] = wilson(k2, n2, confidence);
  const d = p1 - p2;
  const lower = d - Math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2);
  const upper = d + Math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2);
  return [Math.max(-1, lower), Math.min(1, upper)];
}

export interface FisherResult {
  /** P(X >= a): the test row has more events than under independence. */
  greater: number;
  /** P(X <= a). */
  less: number;
  /** Sum of probabilities of tables no more likely than the observed one (as R's fisher.test). */
  twoSided: number;
}

/**
 * Fisher's exact test for the 2×2 table [[a, b], [c, d]], rows = arms (test, control),
 * columns = (event, no event). Exact hypergeometric sums in log space.
 */
export function fisherExact(a: number, b: number, c: number, d: number): FisherResult {
  for (const v of [a, b, c, d]) {
    if (!Number.isInteger(v) || v < 0)
      throw new RangeError(`fisherExact: cells must be non-negative integers`);
  }
  const r1 = a + b;
  const r2 = c + d;
  const c1 = a + c;
  const n = r1 + r2;
  const lo = Math.max(0, c1 - r2);
  const hi = Math.min(r1, c1);
  const logDenom = logChoose(n, c1);
  const probs: number[] = [];
  for (let x = lo; x <= hi; x++) probs.push(Math.exp(logChoose(r1, x) + logChoose(r2, c1 - x) - logDenom));
  const observed = probs[a - lo] ?? 0;
  let greater = 0;
  let less = 0;
  let twoSided = 0;
  const tolerance = observed * (1 + 1e-7);
  probs.forEach((p, i) => {
    const x = lo + i;
    if (x >= a) greater += p;
    if (x <= a) less += p;
    if (p <= tolerance) twoSided += p;
  });
  return { greater: Math.min(1, greater), less: Math.min(1, less), twoSided: Math.min(1, twoSided) };
}

/** Benjamini–Hochberg (1995) adjusted p-values (q-values), in the input order. */
export function benjaminiHochberg(pValues: readonly number[]): number[] {
  const m = pValues.length;
  const order = pValues.map((p, i) => ({ p, i })).sort((x, y) => x.p - y.p);
  const q = new Array<number>(m).fill(1);
  let running = 1;
  for (let rank = m; rank >= 1; rank--) {
    const entry = order[rank - 1]!;
    running = Math.min(running, (entry.p * m) / rank);
    q[entry.i] = Math.min(1, running);
  }
  return q;
}

export interface MannWhitneyResult {
  /** U statistic of x over y: pairs with x > y plus half the ties. */
  u: number;
  /** One-sided p-value for "x tends to be larger than y". */
  pGreater: number;
  method: 'exact' | 'normal';
}

/**
 * Mann–Whitney U test, one-sided (x stochastically greater than y). Exact null distribution when
 * there are no ties and both samples are at most 50; otherwise the normal approximation with tie
 * and continuity correction.
 */
export function mannWhitneyGreater(x: readonly number[], y: readonly number[]): MannWhitneyResult {
  const n1 = x.length;
  const n2 = y.length;
  if (n1 === 0 || n2 === 0) return { u: 0, pGreater: 1, method: 'exact' };
  const all = [...x.map((v) => ({ v, g: 0 })), ...y.map((v) => ({ v, g: 1 }))].sort((p, q) => p.v - q.v);
  const ranks = new Array<number>(all.length);
  let tieTerm = 0;
  for (let i = 0; i < all.length; ) {
    let j = i;
    while (j + 1 < all.length && all[j + 1]!.v === all[i]!.v) j++;
    const rank = (i + j + 2) / 2;
    for (let k = i; k <= j; k++) ranks[k] = rank;
    const t = j - i + 1;
    tieTerm += t ** 3 - t;
    i = j + 1;
  }
  let r1 = 0;
  all.forEach((e, i) => {
    if (e.g === 0) r1 += ranks[i]!;
  });
  const u = r1 - (n1 * (n1 + 1)) / 2;
  if (tieTerm === 0 && n1 <= 50 && n2 <= 50) {
    const key = `${n1},${n2}`;
    let dist = U_CACHE.get(key);
    if (!dist) {
      dist = exactUDistribution(n1, n2);
      if (U_CACHE.size > 500) U_CACHE.clear();
      U_CACHE.set(key, dist);
    }
    let tail = 0;
    for (let k = Math.round(u); k < dist.length; k++) tail += dist[k]!;
    return { u, pGreater: Math.min(1, tail), method: 'exact' };
  }
  const n = n1 + n2;
  const mean = (n1 * n2) / 2;
  const variance = ((n1 * n2) / 12) * (n + 1 - tieTerm / (n * (n - 1)));
  if (variance <= 0) return { u, pGreater: 1, method: 'normal' };
  const z = (u - mean - 0.5) / Math.sqrt(variance);
  return { u, pGreater: 1 - normalCdf(z), method: 'normal' };
}

const U_CACHE = new Map<string, number[]>();

/** Probabilities of U = 0..n1·n2 under H0 (no ties), by the standard recursion on counts. */
function exactUDistribution(n1: number, n2: number): number[] {
  // f[i][j][u]: number of arrangements of i x's and j y's with U = u; roll over j.
  const max = n1 * n2;
  let prev: number[][] = [];
  for (let i = 0; i <= n1; i++) {
    const row = new Array<number>(max + 1).fill(0);
    row[0] = 1; // j = 0
    prev.push(row);
  }
  for (let j = 1; j <= n2; j++) {
    const cur: number[][] = [];
    for (let i = 0; i <= n1; i++) {
      const row = new Array<number>(max + 1).fill(0);
      // last element is a y (adds 0) or an x (adds j, the number of y's below it)
      const fromY = prev[i]!;
      for (let k = 0; k <= max; k++) row[k] = fromY[k]!;
      if (i > 0) {
        const fromX = cur[i - 1]!;
        for (let k = j; k <= max; k++) row[k] = row[k]! + fromX[k - j]!;
      }
      cur.push(row);
    }
    prev = cur;
  }
  const counts = prev[n1]!;
  const total = Math.exp(logChoose(n1 + n2, n1));
  return counts.map((c) => c / total);
}

/** Linear-interpolated quantile (type 7, as R's default) of a sample. */
export function quantile(sample: readonly number[], prob: number): number {
  if (sample.length === 0) return Number.NaN;
  const sorted = [...sample].sort((p, q) => p - q);
  const h = (sorted.length - 1) * prob;
  const lo = Math.floor(h);
  const hi = Math.min(sorted.length - 1, lo + 1);
  return sorted[lo]! + (h - lo) * (sorted[hi]! - sorted[lo]!);
}

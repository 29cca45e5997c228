/**
 * Isolation of the minimal term combination(s) that trigger suppression, over an oracle
 * "is a message with exactly these terms suppressed?". Assumes the censor is monotone (adding
 * terms never lifts a suppression), which holds for rules of required terms; extenuating
 * combinations (QQMail) break it (see README).
 */
import { ContradictionError, type RobustOracle, type TermsOracle } from './oracle.ts';

export type { ProbeResult, RobustOracle, TermsOracle, TermsProbe } from './oracle.ts';
export { ContradictionError, robustOracle, UnresolvedProbeError } from './oracle.ts';

/** Split `items` into n nearly equal contiguous chunks. */
function chunks<T>(items: readonly T[], n: number): T[][] {
  const out: T[][] = [];
  const size = items.length / n;
  for (let i = 0; i < n; i++) out.push(items.slice(Math.round(i * size), Math.round((i + 1) * size)));
  return out.filter((c) => c.length > 0);
}

/**
 * ddmin (Zeller & Hildebrandt 2002): a 1-minimal subset of `items` on which `fails` holds, given
 * that it holds on `items`. With a monotone predicate 1-minimal = minimal.
 */
export async function ddmin<T>(
  items: readonly T[],
  fails: (subset: readonly T[]) => Promise<boolean>,
): Promise<T[]> {
  let c = [...items];
  let n = 2;
  while (c.length >= 2) {
    const parts = chunks(c, n);
    let reduced = false;
    for (const part of parts) {
      if (await fails(part)) {
        c = part;
        n = 2;
        reduced = true;
        break;
      }
    }
    if (!reduced && n > 2) {
      for (const part of parts) {
        const complement = c.filter((x) => !part.includes(x));
        if (await fails(complement)) {
          c = complement;
          n = Math.max(n - 1, 2);
          reduced = true;
          break;
        }
      }
    }
    if (reduced) continue;
    if (n >= c.length) break;
    n = Math.min(c.length, 2 * n);
  }
  return c;
}

/** A minimisation kept more elements than the caller's size limit (see `findMinimalSubsets`). */
export class SizeLimitError extends Error {
  constructor(readonly limit: number) {
    super(`minimal subset would exceed ${limit} elements`);
    this.name = 'SizeLimitError';
  }
}

/**
 * QuickXplain (Junker 2004): a minimal subset of `items` on which the monotone `fails` holds,
 * given that it holds on `items`; about 2k·log2(n/k) + 2k questions for k needed of n items.
 * With `limit`, throws `SizeLimitError` as soon as more than `limit` elements are kept.
 */
export async function quickXplain<T>(
  items: readonly T[],
  fails: (subset: readonly T[]) => Promise<boolean>,
  limit = Number.POSITIVE_INFINITY,
): Promise<T[]> {
  let kept = 0;
  const qx = async (background: readonly T[], added: boolean, candidates: readonly T[]): Promise<T[]> => {
    if (added && (await fails(background))) return [];
    if (candidates.length === 1) {
      if (++kept > limit) throw new SizeLimitError(limit);
      return [...candidates];
    }
    const half = Math.ceil(candidates.length / 2);
    const c1 = candidates.slice(0, half);
    const c2 = candidates.slice(half);
    const d2 = await qx([...background, ...c1], c1.length > 0, c2);
    const d1 = await qx([...background, ...d2], d2.length > 0, c1);
    return [...d1, ...d2];
  };
  if (items.length === 0) return [];
  const found = new Set(await qx([], false, items));
  return items.filter((x) => found.has(x));
}

export type MinimiseAlgorithm = 'quickxplain' | 'ddmin';

export interface MinimalSubsetsResult<T> {
  /** Every minimal subset found, each in input order. */
  minimal: T[][];
  /** True when the search stopped at `maxSubsets` (others may exist) or after `maxReruns`. */
  truncated: boolean;
  /** Minimisations re-run because a provisional positive they rested on was overturned. */
  reruns: number;
}

export interface MinimalSubsetsOptions<T> {
  maxSubsets?: number;
  algorithm?: MinimiseAlgorithm;
  /**
   * Confirm a provisional positive answer (noisy oracles); default: answers are final. Used on
   * every universe other than the first before minimising it, and on every subset found.
   */
  confirm?: (subset: readonly T[]) => Promise<boolean>;
  /** After a found subset failed confirmation: overturn a provisional positive; returns flips. */
  recheck?: () => Promise<number>;
  /** Re-runs allowed per minimisation. Default 5. */
  maxReruns?: number;
  /**
   * With a noisy oracle: a minimisation that keeps more than this many elements is suspected
   * of resting on a lost message (which makes QuickXplain keep everything after it), so the
   * provisional positives are re-checked first; past that it runs without the limit. Default
   * `COMBINATION_SIZE_HINT`.
   */
  sizeHint?: number;
}

/**
 * The most components a combination is expected to have (Citizen Lab's have at most 6): a larger
 * one is suspected of resting on a lost message. Isolation's `sizeHint`, and the most sets a
 * screen's cross-set combination found in one round may span.
 */
export const COMBINATION_SIZE_HINT = 8;

/**
 * All minimal subsets on which `fails` holds (monotone `fails`), by QuickXplain (or ddmin) plus a
 * hitting-set search (Reiter 1987): every other minimal subset must leave out at least one element
 * of each one found, so the search removes one element of a found subset at a time. Each found
 * minimal subset costs one minimisation plus about one question per element. With a noisy oracle
 * each subset is confirmed as soon as it is found, so a lost message cannot seed a wrong branch.
 */
export async function findMinimalSubsets<T>(
  items: readonly T[],
  fails: (subset: readonly T[]) => Promise<boolean>,
  options: MinimalSubsetsOptions<T> = {},
): Promise<MinimalSubsetsResult<T>> {
  const maxSubsets = options.maxSubsets ?? 16;
  const confirm = options.confirm ?? fails;
  const recheck = options.recheck ?? (async () => 0);
  const index = new Map(items.map((x, i) => [x, i]));
  const key = (s: readonly T[]) => s.map((x) => index.get(x)).join(',');
  const found: T[][] = [];
  const visited = new Set<string>();
  let truncated = false;
  let reruns = 0;
  let limit = options.recheck ? (options.sizeHint ?? COMBINATION_SIZE_HINT) : Number.POSITIVE_INFINITY;
  const minimiseConfirmed = async (universe: readonly T[]): Promise<T[] | undefined> => {
    for (let attempt = 0; attempt <= (options.maxReruns ?? 5); attempt++) {
      try {
        if (!(await fails(universe))) return undefined; // the universe itself was overturned
        const minimal =
          options.algorithm === 'ddmin'
            ? await ddmin(universe, fails)
            : await quickXplain(universe, fails, limit);
        if (await confirm(minimal)) return minimal;
        // The confirmation may itself have overturned the answer the result rested on; otherwise
        // overturn an older provisional positive. Unchanged answers replay from the memo for free.
        await recheck();
      } catch (e) {
        if (e instanceof SizeLimitError) {
          // suspiciously large: re-check provisional positives; if none was lost, lift the limit
          if ((await recheck()) === 0) limit = Number.POSITIVE_INFINITY;
        } else if (!(e instanceof ContradictionError)) throw e;
        // (a contradiction has already overturned a provisional positive: start over)
      }
      reruns++;
    }
    truncated = true;
    return undefined;
  };
  /** Ask again after a contradiction: the memo then holds the (valid) answer. */
  const settled = async (f: () => Promise<boolean>): Promise<boolean> => {
    for (;;) {
      try {
        return await f();
      } catch (e) {
        if (!(e instanceof ContradictionError)) throw e;
      }
    }
  };
  const explore = async (universe: readonly T[], first: boolean): Promise<void> => {
    const k = key(universe);
    if (universe.length === 0 || visited.has(k)) return;
    visited.add(k);
    let minimal = found.find((m) => m.every((x) => universe.includes(x)));
    if (!minimal) {
      if (!(await settled(() => fails(universe)))) return;
      if (!first && !(await settled(() => confirm(universe)))) return;
      minimal = await minimiseConfirmed(universe);
      if (!minimal) return;
      found.push(minimal);
    }
    if (found.length >= maxSubsets) {
      // the search for further subsets is not made: say so rather than claim there are none
      truncated = true;
      return;
    }
    for (const x of minimal)
      await explore(
        universe.filter((y) => y !== x),
        false,
      );
  };
  await explore(items, true);
  return { minimal: found, truncated, reruns };
}

export interface IsolationResult {
  /** Minimal triggering combinations, each a list of terms (confirmed). */
  combinations: string[][];
  truncated: boolean;
  /** Re-runs caused by a provisional positive that confirmation overturned. */
  reruns: number;
}

export interface IsolationOptions {
  maxCombinations?: number;
  algorithm?: MinimiseAlgorithm;
  /** Re-runs allowed per minimisation after overturned positives. Default 5. */
  maxReruns?: number;
}

/**
 * Minimal triggering combination(s) of a suppressed multi-term message. Pass a `RobustOracle`
 * (lazy confirmation: each combination found is confirmed at once, and its minimisation re-runs
 * if a provisional positive it rested on was a lost message), or a plain boolean oracle that is
 * trusted as is. Returns no combination if the full message is not suppressed (any more).
 */
export async function isolateTerms(
  terms: readonly string[],
  oracle: RobustOracle | TermsOracle,
  options: IsolationOptions = {},
): Promise<IsolationResult> {
  const unique = [...new Set(terms)];
  if (typeof oracle === 'function') {
    const r = await findMinimalSubsets(unique, oracle, {
      maxSubsets: options.maxCombinations,
      algorithm: options.algorithm,
    });
    return { combinations: r.minimal, truncated: r.truncated, reruns: r.reruns };
  }
  const r = await findMinimalSubsets(unique, oracle.oracle, {
    maxSubsets: options.maxCombinations,
    algorithm: options.algorithm,
    confirm: oracle.confirm,
    recheck: oracle.confirmProvisional,
    maxReruns: options.maxReruns,
  });
  return { combinations: r.minimal, truncated: r.truncated, reruns: r.reruns };
}

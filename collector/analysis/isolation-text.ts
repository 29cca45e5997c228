/**
 * Character-level isolation: the components of the combination that gets a long text (an
 * article, or one long term) suppressed, when the components are not known in advance
 * (Xiong & Knockel 2019's task). Improved version of their search:
 *   1. binary search the shortest prefix that, with the components found so far, is still
 *      suppressed: its last character ends a component;
 *   2. gallop backwards from that end (2, 4, 6, 10, … characters, then bisect) for the component's
 *      start, testing the candidate piece beside the prefix just short of the end;
 *   3. keep the component, cut the text before its end, repeat until the components alone are
 *      suppressed.
 * Questions are sent as separate pieces (the probe renders them apart, e.g. `a | b`) so cutting
 * never creates new adjacent text. Lazy confirmation: each boundary rests on one positive and
 * one negative answer; only the positive is confirmed, and the search resumes if it flips.
 * Finds one minimal combination (the one ending earliest); other combinations in the same text
 * need the text without it (run again on the remaining text).
 */
import { ContradictionError, type RobustOracle, type TermsOracle } from './oracle.ts';

export interface TextIsolationResult {
  /** Components in the order found (last-ending first). Empty if the text is not suppressed. */
  components: string[];
}

function asRobust(oracle: RobustOracle | TermsOracle): RobustOracle {
  if (typeof oracle !== 'function') return oracle;
  const counters = { questions: 0, probes: 0, cacheHits: 0, flipped: 0, inferred: 0 };
  return { oracle, confirm: oracle, confirmProvisional: async () => 0, counters };
}

/**
 * Smallest i in (lo, hi] with f(i) true, given f(lo) false and f(hi) true. The answer rests on
 * f(i) (confirmed) and f(i − 1) (a negative, reliable). Returns undefined if f(hi) itself fails
 * confirmation.
 */
async function smallestTrue(
  lo: number,
  hi: number,
  f: (i: number) => Promise<boolean>,
  confirm: (i: number) => Promise<boolean>,
): Promise<number | undefined> {
  for (;;) {
    let a = lo;
    let b = hi;
    while (b - a > 1) {
      const mid = Math.floor((a + b) / 2);
      if (await f(mid)) b = mid;
      else a = mid;
    }
    if (await confirm(b)) return b;
    if (b === hi) return undefined;
  }
}

/**
 * Piece lengths tried when galloping back from a component's end: the Citizen Lab components are
 * 2 characters long in 35% of cases, 3–4 in 43%, 5–6 in 16% (4,415 components), so trying 2, 4,
 * 6, … and then bisecting settles most lengths in 2–3 questions (doubling from 1 needs ~3.8).
 */
const GALLOP_LENGTHS = [2, 4, 6, 10, 16, 26, 42, 68, 110, 178, 288, 466, 754, 1220];

/** Largest s in [0, end) with g(s) true, galloping down from the end (g(0) true assumed). */
async function largestTrueFromEnd(
  end: number,
  g: (s: number) => Promise<boolean>,
  confirm: (s: number) => Promise<boolean>,
): Promise<number> {
  for (;;) {
    let bad = end; // g(end) is the empty piece: false
    let good = 0;
    const lengths = [...GALLOP_LENGTHS];
    while ((lengths[lengths.length - 1] ?? 0) < end) lengths.push(2 * (lengths[lengths.length - 1] ?? 1));
    for (const length of lengths) {
      const s = end - length;
      if (s <= 0) break;
      if (await g(s)) {
        good = s;
        break;
      }
      bad = s;
    }
    while (bad - good > 1) {
      const mid = Math.floor((good + bad) / 2);
      if (await g(mid)) good = mid;
      else bad = mid;
    }
    if (good === 0 || (await confirm(good))) return good;
  }
}

export interface TextIsolationOptions {
  maxComponents?: number;
  /**
   * Pieces sent with every question and never reported: the other terms of a combination when
   * one long term of it is refined to the part the censor matches.
   */
  context?: readonly string[];
}

export async function isolateText(
  text: string,
  oracle: RobustOracle | TermsOracle,
  options: TextIsolationOptions = {},
): Promise<TextIsolationResult> {
  const base = asRobust(oracle);
  const context = options.context ?? [];
  const withContext = (pieces: readonly string[]) => [...context, ...pieces];
  // Contradictions (a negative overturning a provisional positive) need no restart here: every
  // boundary is confirmed before use, so asking again and reading the memo is enough.
  const retry =
    (f: TermsOracle): TermsOracle =>
    async (pieces) => {
      for (;;) {
        try {
          return await f(withContext(pieces));
        } catch (e) {
          if (!(e instanceof ContradictionError)) throw e;
        }
      }
    };
  const o: RobustOracle = { ...base, oracle: retry(base.oracle), confirm: retry(base.confirm) };
  const chars = [...text];
  if (!(await o.oracle([text])) || !(await o.confirm([text]))) return { components: [] };
  const known: string[] = [];
  let rest = chars;
  const maxComponents = options.maxComponents ?? 12;
  while (known.length < maxComponents) {
    if (known.length > 0 && (await o.oracle(known)) && (await o.confirm(known))) break;
    const prefix = (e: number) => [...known, rest.slice(0, e).join('')].filter((p) => p !== '');
    const withPrefix = (e: number) => o.oracle(prefix(e));
    const end = await smallestTrue(0, rest.length, withPrefix, (e) => o.confirm(prefix(e)));
    if (end === undefined) return { components: [] };
    const before = rest.slice(0, end - 1).join('');
    const piece = (s: number) => [...known, rest.slice(s, end).join(''), before].filter((p) => p !== '');
    const start = await largestTrueFromEnd(
      end,
      (s) => o.oracle(piece(s)),
      (s) => o.confirm(piece(s)),
    );
    known.push(rest.slice(start, end).join(''));
    rest = rest.slice(0, end - 1);
  }
  return { components: known };
}

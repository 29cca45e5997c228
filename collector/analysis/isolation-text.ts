/**
 * Character-level isolation: the components of the combination that gets a long text (an
 * article, or one long term) suppressed, when the components are not known in advance
 * (Xiong & Knockel 2019's task). Improved version of their search:
 *   1. search the shortest prefix that, with the components found so far, is still suppressed:
 *      its last character ends a component (position 0, the components found so far alone,
 *      ends the search);
 *   2. search back from that end for the component's start, testing the candidate piece beside
 *      the prefix just short of the end;
 *   3. keep the component, cut the text before its end, repeat.
 * Each search asks at the median of what is still possible, weighted by what Citizen Lab
 * combinations look like (decision 021): the end of the last-ending of c components placed
 * uniformly is skewed to the text's end (P(end ≤ x) = (x/n)^c, c from the component counts of
 * the lists), and component lengths follow the lists' lengths (2 characters in 37% of cases)
 * with a heavy tail, so an unusually long component is found by doubling.
 * Questions are sent as separate pieces (the probe renders them apart, e.g. `a | b`) so cutting
 * never creates new adjacent text. Finds one minimal combination (the one ending earliest);
 * other combinations in the same text need the text without it (run again on the remaining text).
 *
 * Under loss (decision 021). Background loss only removes messages, so a delivery (negative) is
 * certain and only a positive can be a lost message. Every question is asked once and the search
 * moves on every answer; a positive is asked again only when the answers after it make a loss
 * likely. The positive the search currently rests on (its *premise*) implies the answers to come
 * in one direction: if it was a loss, every question asked after it comes back negative, while if
 * it was true each negative had the probability the search gave it. The odds that the premise
 * was a loss, ℓ/(1 − ℓ) for the loss rate ℓ times the likelihood ratio of the negatives since,
 * are kept; when they reach 1 : 4 the premise is asked once more (a further positive multiplies
 * them by ℓ/(1 − ℓ)). A premise that turns out negative was a loss: the search starts again
 * from the memo (earlier answers replay without sending anything) and takes the other branch.
 * A delivered message is never asked again, and a positive only while the search rests on it.
 * The result rests on negatives (each component one character shorter at either end, with the
 * rest, was delivered) and on one positive, the components alone; that one is asked until
 * ℓ^n ≤ 10⁻³ (at least twice), the last time with a matched control, so an outage cannot fake
 * a result (it leaves the run unresolved) and a loss does so about once in a thousand runs.
 */
import { ContradictionError, type RobustOracle, type TermsOracle } from './oracle.ts';

export interface TextIsolationResult {
  /** Components in the order found (last-ending first). Empty if the text is not suppressed. */
  components: string[];
}

/** Background loss assumed when the caller has not measured it (the field's usual few per cent). */
export const DEFAULT_LOSS_RATE = 0.03;

export interface TextIsolationOptions {
  maxComponents?: number;
  /**
   * Pieces sent with every question and never reported: the other terms of a combination when
   * one long term of it is refined to the part the censor matches.
   */
  context?: readonly string[];
  /**
   * Background loss rate ℓ measured by the campaign's controls (default 3%): how much a positive
   * is trusted (see the top of this file).
   */
  lossRate?: number;
}

/**
 * Components per combination, index = count: 1,256 usable Citizen Lab combinations have 2 (17%),
 * 3 (52%), 4 (28%) or 5 (3%) components; one long term (1) and more than 5 keep a small weight
 * so that they are found, only more slowly.
 */
const COMPONENT_COUNT_PRIOR = [
  0, 0.02, 0.17, 0.51, 0.27, 0.03, 0.002, 0.002, 0.002, 0.002, 0.002, 0.002, 0.002,
];

/**
 * Component lengths of those combinations (3,967 components), index = length in characters:
 * 1: 36, 2: 1,474, 3: 810, 4: 898, 5: 311, 6: 251, 7: 112, 8: 35, then a few up to 23.
 */
const LENGTH_COUNTS = [
  0, 36, 1474, 810, 898, 311, 251, 112, 35, 13, 11, 7, 2, 2, 0, 1, 0, 0, 2, 0, 0, 0, 0, 2,
];
const LENGTH_TOTAL = LENGTH_COUNTS.reduce((a, b) => a + b, 0);
const LENGTH_TABLE_SURVIVAL = LENGTH_COUNTS.map(
  (_, l) => LENGTH_COUNTS.slice(l + 1).reduce((a, b) => a + b, 0) / LENGTH_TOTAL,
);
/** Weight of the heavy tail P(length > L) = 2/(L + 2), which makes long components a doubling search. */
const LENGTH_TAIL = 0.02;

/** P(component length > L). */
function lengthSurvival(length: number): number {
  if (length <= 0) return 1;
  const table = LENGTH_TABLE_SURVIVAL[length] ?? 0;
  return (1 - LENGTH_TAIL) * table + LENGTH_TAIL * (2 / (length + 2));
}

function asRobust(oracle: RobustOracle | TermsOracle): RobustOracle {
  if (typeof oracle !== 'function') return oracle;
  const counters = { questions: 0, probes: 0, cacheHits: 0, flipped: 0, inferred: 0 };
  return {
    oracle,
    confirm: oracle,
    confirmProvisional: async () => 0,
    reask: (terms) => oracle(terms),
    counters,
  };
}

/** A premise turned out to be a lost message: start again from the memo. */
class LostPremise extends Error {}

/** The positive answer the search currently rests on, and the evidence against it since. */
interface Premise {
  pieces: readonly string[];
  /** log2 of the likelihood ratio (loss : true) of the answers since it was given. */
  bits: number;
  /** Positives it has (1 + times asked again). */
  positives: number;
}

interface Evidence {
  /** A positive with prior probability `p` becomes the premise. */
  positive(pieces: readonly string[], p: number): void;
  /** A negative that had probability `p` if the premise is true counts against it. */
  negative(p: number): Promise<void>;
}

/**
 * Smallest x in (lo, hi] with f(x) true, given f(lo) false and f(hi) true, asking at the median
 * of `cdf` (increasing, the prior P(answer ≤ x)) over what is still possible. The answer rests
 * on f(x − 1) (a negative, certain) and f(x) (the new premise).
 */
async function smallestTrue(
  lo: number,
  hi: number,
  cdf: (x: number) => number,
  f: (x: number) => Promise<boolean>,
  question: (x: number) => readonly string[],
  evidence: Evidence,
): Promise<number> {
  let a = lo;
  let b = hi;
  while (b - a > 1) {
    const base = cdf(a);
    const mass = cdf(b) - base;
    // smallest x in (a, b) with at least half the mass at or below it
    let l = a + 1;
    let h = b - 1;
    while (l < h) {
      const m = Math.floor((l + h) / 2);
      if (cdf(m) - base >= mass / 2) h = m;
      else l = m + 1;
    }
    // or the one below it, if that splits more evenly
    const share = (x: number) => (mass > 0 ? (cdf(x) - base) / mass : (x - a) / (b - a));
    const x = l > a + 1 && Math.abs(share(l - 1) - 0.5) < Math.abs(share(l) - 0.5) ? l - 1 : l;
    const p = Math.min(1 - 1e-9, Math.max(1e-9, share(x)));
    if (await f(x)) {
      b = x;
      evidence.positive(question(x), p);
    } else {
      a = x;
      await evidence.negative(1 - p);
    }
  }
  return b;
}

/**
 * A premise is asked again once the odds that it was a loss reach 1 : 4 (2 bits below even):
 * unchecked, a lost premise wastes every question after it; a check costs one message. Measured
 * on 1,500 seeded articles at 3% loss, odds of 1 : 4 to 1 : 1 cost the same within 0.3 messages,
 * 1 : 8 and lower cost more (checks of true premises), 2 : 1 and higher too (wasted questions).
 */
const SUSPICION_BITS = 2;

/** Searches started again after a lost premise before giving up (each one overturns an answer). */
const MAX_RESTARTS = 200;

export async function isolateText(
  text: string,
  oracle: RobustOracle | TermsOracle,
  options: TextIsolationOptions = {},
): Promise<TextIsolationResult> {
  const o = asRobust(oracle);
  const context = options.context ?? [];
  const withContext = (pieces: readonly string[]) => [...context, ...pieces];
  const loss = Math.min(0.5, Math.max(1e-6, options.lossRate ?? DEFAULT_LOSS_RATE));
  /** log2 of the odds (true : loss) one positive carries. */
  const trust = Math.log2((1 - loss) / loss);
  const resultPositives = Math.max(2, Math.ceil(Math.log(1e-3) / Math.log(loss)));
  const ask = (pieces: readonly string[]) => o.oracle(withContext(pieces));
  const maxComponents = options.maxComponents ?? COMPONENT_COUNT_PRIOR.length - 1;
  const chars = [...text];

  /** One pass over the memo; throws LostPremise (or a contradiction) when an answer flipped. */
  const search = async (): Promise<string[]> => {
    if (!(await ask([text]))) return [];
    const premise: Premise = { pieces: [text], bits: 0, positives: 1 };
    const evidence: Evidence = {
      positive: (pieces, p) => {
        premise.pieces = pieces;
        premise.positives = 1;
        // prior odds (loss : true) of a positive to a question that was true with probability p
        premise.bits = Math.log2((1 - p) / p);
      },
      negative: async (p) => {
        premise.bits += Math.log2((1 - loss) / p);
        while (premise.bits >= premise.positives * trust - SUSPICION_BITS) {
          premise.positives++;
          if (!(await o.reask(withContext(premise.pieces), premise.positives))) throw new LostPremise();
        }
      },
    };
    /** Weights of the number of components still to find. */
    let counts = COMPONENT_COUNT_PRIOR.map((w, c) => (c <= maxComponents ? w : 0));
    const known: string[] = [];
    let rest = chars;
    for (;;) {
      const n = rest.length;
      // P(end ≤ x): 0 when the components found so far are enough, else the last end of c uniform
      const endCdf = (x: number) =>
        x < 0 ? 0 : counts.reduce((sum, w, c) => sum + w * (c === 0 ? 1 : n > 0 ? (x / n) ** c : 1), 0);
      const prefix = (e: number) => [...known, rest.slice(0, e).join('')].filter((p) => p !== '');
      // position 0 (the components alone) is a candidate once there are components
      const lo = known.length > 0 ? -1 : 0;
      const end = await smallestTrue(lo, n, endCdf, (e) => ask(prefix(e)), prefix, evidence);
      if (end === 0) {
        // the result: the components alone, asked until a loss is out of the question
        if (!(await o.reask(withContext(known), resultPositives, { control: true }))) throw new LostPremise();
        return known;
      }
      if (known.length >= maxComponents) return known;
      const before = rest.slice(0, end - 1).join('');
      const piece = (length: number) =>
        [...known, rest.slice(end - length, end).join(''), before].filter((p) => p !== '');
      // length L is enough when the piece of the last L characters is; `end` characters always are
      const length = await smallestTrue(
        0,
        end,
        (l) => 1 - lengthSurvival(l),
        (l) => ask(piece(l)),
        piece,
        evidence,
      );
      known.push(rest.slice(end - length, end).join(''));
      // what this end says about how many components there were: c → c − 1 still to find
      const weights = counts.map((w, c) => (c === 0 ? 0 : w * ((end / n) ** c - ((end - 1) / n) ** c)));
      const total = weights.reduce((a, b) => a + b, 0);
      counts = [...weights.slice(1).map((w) => (total > 0 ? w / total : 0)), 0];
      if (total === 0) counts = COMPONENT_COUNT_PRIOR.map((w, c) => (c === 0 ? 0.5 : w));
      rest = rest.slice(0, end - 1);
    }
  };

  for (let restart = 0; restart <= MAX_RESTARTS; restart++) {
    try {
      return { components: await search() };
    } catch (e) {
      // a positive the search rested on was a lost message (found by asking it again, or by a
      // delivery of a message that contains it): the memo now says so, search again
      if (!(e instanceof LostPremise) && !(e instanceof ContradictionError)) throw e;
    }
  }
  return { components: [] };
}

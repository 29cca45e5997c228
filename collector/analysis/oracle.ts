/**
 * A noise-robust, memoised oracle "is a message with these terms suppressed?" over a noisy probe.
 *
 * Background loss only ever removes messages, so a delivered test canary proves the message is
 * not suppressed; a missing one may be loss. Questions are therefore answered with one probe
 * (no control: a delivery needs none), and a positive stays *provisional* until confirmed by
 * `confirm` consecutive positives whose controls arrived. Algorithms confirm only the positives
 * their result rests on (lazy confirmation), and re-run after a provisional positive turns out
 * false. With `lazy: false` every positive is confirmed at once.
 */

/** One probe: suppressed while the control arrived, delivered, or void (control lost / outage). */
export type ProbeResult = 'positive' | 'negative' | 'void';

/**
 * One probe of a message. With `control: true` a matched control goes out in the same window and
 * the result is `void` if the control did not arrive; with `control: false` only the test is sent.
 */
export type TermsProbe = (terms: readonly string[], options: { control: boolean }) => Promise<ProbeResult>;

export type TermsOracle = (terms: readonly string[]) => Promise<boolean>;

export interface RobustOracleOptions {
  /** Consecutive positive probes that make a suppression confirmed. Default 3. */
  confirm: number;
  /** Void probes tolerated per question before giving up. Default 6. */
  maxVoids: number;
  /** Answer positives after one probe and confirm on demand (default true). */
  lazy: boolean;
  /**
   * Use monotonicity (default true): a subset of a negative is negative and a superset of a
   * confirmed positive positive, without probing; a negative on a superset of a provisional
   * positive overturns it and throws `ContradictionError` so the algorithm can re-run.
   */
  monotone: boolean;
}

export interface OracleCounters {
  /** Distinct questions asked (after memoisation). */
  questions: number;
  /** Probes sent (test canaries). */
  probes: number;
  /** Memoised answers reused. */
  cacheHits: number;
  /** Provisional positives that confirmation or a contradiction turned into negatives. */
  flipped: number;
  /** Questions answered from earlier answers by monotonicity, without probing. */
  inferred: number;
}

export interface RobustOracle {
  /** Answer (possibly provisional when lazy). */
  oracle: TermsOracle;
  /** Confirm a positive answer; false if the question is (now) negative. */
  confirm: TermsOracle;
  /**
   * After a result failed its confirmation: re-probe provisional positives once each, newest
   * first, until one turns out to have been a lost message (then re-run the algorithm; the memo
   * keeps every other answer). If none does, confirm them all fully. Returns how many flipped.
   */
  confirmProvisional: () => Promise<number>;
  /**
   * Ask a positive again until it has `positives` consecutive positive probes or turns negative
   * (a delivery); false if it is (now) negative. The extra probes go out alone, or each with a
   * matched control when `control` (then a lost control makes the probe void and it is sent
   * again). Idempotent: an answer that already has that many positives sends nothing, so an
   * algorithm that replays from the memo may call it again.
   */
  reask: (terms: readonly string[], positives: number, options?: { control?: boolean }) => Promise<boolean>;
  counters: OracleCounters;
}

export class UnresolvedProbeError extends Error {
  constructor(readonly terms: readonly string[]) {
    super(`probe stayed void for [${terms.join(', ')}]`);
    this.name = 'UnresolvedProbeError';
  }
}

interface Entry {
  terms: readonly string[];
  set: ReadonlySet<string>;
  negative: boolean;
  /** Consecutive positives so far (the last `positives` probes were positive). */
  positives: number;
  /** Probing finished (the answer can be used for inference). */
  settled: boolean;
  /** Some of its positives came without a control (`reask`): not a confirmation to infer from. */
  bare?: boolean;
}

/**
 * A reliable negative answer contradicts an earlier positive answer on a subset (the censor is
 * monotone): that positive was a lost message and has been overturned. Algorithms that build on
 * provisional answers catch this and re-run from the memo.
 */
export class ContradictionError extends Error {
  constructor(readonly overturned: number) {
    super(`${overturned} provisional positive(s) overturned by a negative on a superset`);
    this.name = 'ContradictionError';
  }
}

const isSubset = (a: ReadonlySet<string>, b: ReadonlySet<string>) => {
  for (const x of a) if (!b.has(x)) return false;
  return true;
};

export function robustOracle(probe: TermsProbe, options: Partial<RobustOracleOptions> = {}): RobustOracle {
  const o: RobustOracleOptions = { confirm: 3, maxVoids: 6, lazy: true, monotone: true, ...options };
  const counters: OracleCounters = { questions: 0, probes: 0, cacheHits: 0, flipped: 0, inferred: 0 };
  const memo = new Map<string, Promise<Entry>>();
  const entries: Entry[] = [];

  /** A negative on `negative.set` overturns positives on its subsets; returns how many. */
  const overturnSubsets = (negative: Entry): number => {
    if (!o.monotone) return 0;
    let n = 0;
    for (const e of entries) {
      if (e !== negative && e.settled && !e.negative && isSubset(e.set, negative.set)) {
        e.negative = true;
        counters.flipped++;
        n++;
      }
    }
    return n;
  };

  /**
   * Probe until `need` consecutive positives or a delivery. Confirming probes carry a control
   * unless `bare` (a delivery needs none; a positive without one may be an outage).
   */
  const probeUntil = async (entry: Entry, need: number, bare = false): Promise<Entry> => {
    let voids = 0;
    let overturned = 0;
    while (!entry.negative && entry.positives < need) {
      counters.probes++;
      const r = await probe(entry.terms, { control: (entry.positives > 0 && !bare) || voids > 0 });
      if (r === 'void') {
        if (++voids > o.maxVoids) throw new UnresolvedProbeError(entry.terms);
      } else if (r === 'negative') {
        if (entry.positives > 0) counters.flipped++;
        entry.negative = true;
        overturned = overturnSubsets(entry);
      } else {
        if (bare && entry.positives > 0) entry.bare = true;
        entry.positives++;
      }
    }
    entry.settled = true;
    if (overturned > 0) throw new ContradictionError(overturned);
    return entry;
  };

  /** Answer from earlier answers: a subset of a negative is negative, a superset of a confirmed positive positive. */
  const infer = (set: ReadonlySet<string>): Entry | undefined => {
    if (!o.monotone) return undefined;
    for (const e of entries) {
      if (!e.settled) continue;
      if (e.negative && isSubset(set, e.set)) return e;
      if (!e.negative && !e.bare && e.positives >= o.confirm && isSubset(e.set, set)) return e;
    }
    return undefined;
  };

  const entryFor = (terms: readonly string[]): Promise<Entry> => {
    const key = [...terms].sort().join('\u0000');
    const hit = memo.get(key);
    if (hit) {
      counters.cacheHits++;
      return hit;
    }
    const set = new Set(terms);
    const known = infer(set);
    const entry: Entry = { terms: [...terms], set, negative: false, positives: 0, settled: false };
    entries.push(entry);
    let answer: Promise<Entry>;
    if (known) {
      counters.inferred++;
      entry.negative = known.negative;
      entry.positives = known.negative ? 0 : o.confirm;
      entry.settled = true;
      answer = Promise.resolve(entry);
    } else {
      counters.questions++;
      answer = probeUntil(entry, o.lazy ? 1 : o.confirm);
      // a contradiction found while answering still leaves this answer valid in the memo
      answer.catch(() => {});
    }
    const memoised = answer.catch((e) => (e instanceof ContradictionError ? entry : Promise.reject(e)));
    // Nobody may ever ask for this key again: an unresolved probe must not become an unhandled
    // rejection (it crashed the whole collector); callers that do ask still see the rejection.
    memoised.catch(() => {});
    memo.set(key, memoised);
    return answer;
  };

  const confirm: TermsOracle = async (terms) => {
    const entry = await entryFor(terms);
    return !(await probeUntil(entry, o.confirm)).negative;
  };

  const reask: RobustOracle['reask'] = async (terms, positives, options = {}) => {
    const entry = await entryFor(terms);
    return !(await probeUntil(entry, positives, options.control !== true)).negative;
  };

  return {
    oracle: async (terms) => !(await entryFor(terms)).negative,
    confirm,
    reask,
    confirmProvisional: async () => {
      const before = counters.flipped;
      const settled = entries.filter((e) => e.settled).reverse();
      const recheckLevel = Math.min(2, o.confirm);
      const bring = async (e: Entry, level: number) => {
        try {
          if (!e.negative && e.positives < level) await probeUntil(e, level);
        } catch (err) {
          if (!(err instanceof ContradictionError)) throw err;
        }
      };
      for (const e of settled) {
        await bring(e, recheckLevel);
        if (counters.flipped > before) return counters.flipped - before;
      }
      for (const e of settled) await bring(e, o.confirm);
      return counters.flipped - before;
    },
    counters,
  };
}

/**
 * Group testing for the `screen` campaign mode: pack many term sets into one message, send packs
 * in rounds, and split suppressed packs by binary splitting until the suppressed term sets are
 * found. See README.md for the assumptions (monotone, deterministic filtering) and error rates.
 */
import { COMBINATION_SIZE_HINT, findMinimalSubsets } from './isolation.ts';
import { type ProbeResult, robustOracle } from './oracle.ts';
import { seededPermutation } from './prng.ts';
import { logChoose } from './stats.ts';

/**
 * One round: every message (a list of terms) goes out once in the same window, with the round's
 * controls; per message `positive` (did not arrive intact in time while controls arrived),
 * `negative` (arrived) or `void` (controls failed: outage, no evidence).
 */
export type RoundProbe = (messages: readonly (readonly string[])[]) => Promise<ProbeResult[]>;

export interface ScreeningOptions {
  /** Character budget for the terms of one message (separators counted). Default 600. */
  maxChars: number;
  /** Length of the separator the canary template puts between terms. Default 3 (` / `). */
  separatorChars: number;
  /** Expected share of suppressed term sets; sets the pack size (Hwang 1972). Default 0.01. */
  expectedPrevalence: number;
  /** Upper bound on term sets per pack. Default 64. */
  maxSetsPerPack: number;
  /**
   * What a clearance must show (default undefined: one delivery, under the assumption of
   * deterministic rules). A rule that fires with probability p escapes one delivery with
   * probability 1 − p. With `{ margin, beta }` the screen runs a second pass over the sets the
   * first (one delivery a pass) cleared, grouped within their first-pass packs and apart from
   * every trigger the first pass found (`clearanceGroups`), and they pass only once their deliveries
   * make a suppression rate of `margin` or more unlikely: after n answers with x positives,
   * P(X ≤ x | n, margin) ≤ beta (`passedAt`; 0 positives need ⌈ln beta / ln(1 − margin)⌉
   * answers, 11 for margin 0.2 and beta 0.1, the error rates of the sequential design's `none`).
   * The answers still needed go out at once, in one round; a group with `clearanceConfirm`
   * positives is split as in the first pass, with the same rule for every question.
   */
  clearance?: { margin: number; beta: number };
  /** Positives that stop a second-pass question (`clearance`) and call the group suppressed. Default 2. */
  clearanceConfirm: number;
  /**
   * Positives to call a pack (more than one set) suppressed and split it. Default 1:
   * a lost message only costs a split whose halves both pass (then re-tested), while every
   * reported set or combination is confirmed with `confirmSet`.
   */
  confirmPack: number;
  /** Positives to call a single term set or a cross-set combination suppressed. Default 3. */
  confirmSet: number;
  /** Void results tolerated per question. Default 6. */
  maxVoids: number;
  /**
   * When the first half of a suppressed group passes, split the second half without testing it
   * (Hwang 1972); it is tested only if its own halves both pass. Saves about a quarter of the
   * splitting messages at the same number of rounds. Default true.
   */
  inferSecondHalf: boolean;
  /**
   * Cross-set combinations to report per group whose halves both pass. Default 1: one explains
   * the group; listing every alternative (a component repeated in several sets) costs rounds.
   */
  crossSetsPerGroup: number;
  /**
   * Begin a cross-set search by asking the group without each of about √(3n) blocks of its sets,
   * then without each set of the blocks found needed, each round's questions at once
   * (`leaveOneOut`), before the sequential minimisation. About as many messages as the
   * minimisation (6 % more in the test), which asks one question a round: in a collector a
   * round is a follow-up step of seconds (check-in, pacing, deadline), and a search over a pack
   * of 32 sets took 17–24 steps.
   * Default false (the benchmark's figures of the screen alone).
   */
  crossSetOneRound: boolean;
  /**
   * Pack in a seeded random order instead of the input order (store the seed with the campaign).
   * Topical lists put related terms next to each other; shuffling makes packs that hold a
   * cross-set combination rarer. Default: input order.
   */
  shuffleSeed?: number;
}

export const DEFAULT_SCREENING_OPTIONS: ScreeningOptions = {
  maxChars: 600,
  separatorChars: 3,
  expectedPrevalence: 0.01,
  maxSetsPerPack: 64,
  confirmPack: 1,
  confirmSet: 3,
  maxVoids: 6,
  inferSecondHalf: true,
  crossSetsPerGroup: 1,
  crossSetOneRound: false,
  clearanceConfirm: 2,
};

/** The most sets a cross-set combination found in one round may span. */
const CROSS_SET_MAX = COMBINATION_SIZE_HINT;

export type ScreenStatus = 'suppressed' | 'clear' | 'cross-set' | 'unresolved';

export interface ScreeningResult {
  /** Per input term set, in input order. `cross-set`: only suppressed together with other sets. */
  status: ScreenStatus[];
  /** Indices of term sets suppressed on their own (candidates for isolation and judging). */
  suppressed: number[];
  /** Minimal groups of term sets (indices) suppressed together but not alone. */
  crossSet: number[][];
  /** Groups whose outcome could not be settled (persistent voids, inconsistent answers). */
  unresolved: number[][];
  /** Test messages sent (the probe adds its controls). */
  tests: number;
  rounds: number;
  packs: number;
}

/** P(X ≤ x) for X ~ Binomial(n, p). */
function binomialCdf(x: number, n: number, p: number): number {
  if (x >= n) return 1;
  if (p <= 0) return 1;
  if (p >= 1) return x >= n ? 1 : 0;
  let sum = 0;
  for (let k = 0; k <= x; k++) {
    sum += Math.exp(logChoose(n, k) + k * Math.log(p) + (n - k) * Math.log(1 - p));
  }
  return Math.min(1, sum);
}

/**
 * Whether n answers with x positives make a suppression rate of `margin` or more unlikely enough
 * for a pass: P(X ≤ x | n, margin) ≤ beta. Without a clearance rule one delivery passes.
 */
export function passedAt(x: number, n: number, clearance: ScreeningOptions['clearance']): boolean {
  if (!clearance) return n - x >= 1;
  return binomialCdf(x, n, clearance.margin) <= clearance.beta;
}

/** Answers (deliveries and positives) a group with x positives needs before it passes. */
export function answersToPass(x: number, clearance: ScreeningOptions['clearance']): number {
  let n = x + 1;
  while (!passedAt(x, n, clearance)) n++;
  return n;
}

/** Group size of Hwang's generalised binary splitting: 2^floor(log2((n − d + 1) / d)). */
export function hwangGroupSize(n: number, d: number): number {
  if (d <= 0) return n;
  const ratio = (n - d + 1) / d;
  return ratio < 2 ? 1 : 2 ** Math.floor(Math.log2(ratio));
}

/** Pack term sets (in input or seeded order) into messages under the character budget and pack size. */
export function packTermSets(
  sets: readonly (readonly string[])[],
  o: Partial<ScreeningOptions> = {},
): number[][] {
  const opt = { ...DEFAULT_SCREENING_OPTIONS, ...o };
  const expected = Math.max(1, Math.round(sets.length * opt.expectedPrevalence));
  const size = Math.max(1, Math.min(opt.maxSetsPerPack, hwangGroupSize(sets.length, expected)));
  const cost = (s: readonly string[]) =>
    s.reduce((a, t) => a + [...t].length, 0) + s.length * opt.separatorChars;
  const order =
    opt.shuffleSeed === undefined ? sets.map((_, i) => i) : seededPermutation(sets.length, opt.shuffleSeed);
  const packs: number[][] = [];
  let current: number[] = [];
  let chars = 0;
  order.forEach((i) => {
    const c = cost(sets[i]!);
    if (current.length > 0 && (current.length >= size || chars + c > opt.maxChars)) {
      packs.push(current);
      current = [];
      chars = 0;
    }
    current.push(i);
    chars += c;
  });
  if (current.length > 0) packs.push(current);
  return packs;
}

/** Collects concurrent sends into rounds: everything asked in the same tick goes out together. */
class RoundBatcher {
  private queue: {
    terms: readonly string[];
    resolve: (r: ProbeResult) => void;
    reject: (e: unknown) => void;
  }[] = [];
  private scheduled = false;
  rounds = 0;
  tests = 0;

  constructor(private readonly probe: RoundProbe) {}

  send(terms: readonly string[]): Promise<ProbeResult> {
    return new Promise((resolve, reject) => {
      this.queue.push({ terms, resolve, reject });
      if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => void this.flush());
      }
    });
  }

  private async flush(): Promise<void> {
    this.scheduled = false;
    const batch = this.queue.splice(0);
    this.rounds++;
    this.tests += batch.length;
    try {
      const results = await this.probe(batch.map((b) => b.terms));
      batch.forEach((b, i) => {
        b.resolve(results[i] ?? 'void');
      });
    } catch (e) {
      for (const b of batch) b.reject(e);
    }
  }
}

/**
 * The second pass's questions (`clearance`): every set the first pass cleared, asked again in as
 * few groups as keep the first pass's guarantees. Sets are grouped within their first-pass pack
 * only (the pack carried them together once, so a group holds no pairing of sets that never met)
 * and in the order their groups passed; a set joins the first of its pack's groups whose terms
 * would not then hold every term of a set or cross-set combination the first pass found
 * suppressed (such a group would only be split down to the known trigger again), else opens one.
 * A pack split by the first pass passed in many small groups (halves, quarters, … around each
 * suppressed set): asking each of them 11 times cost 300–600 messages a scope at 100 sets. A set
 * cleared otherwise (inside a cross-set search) goes alone, as before. A combination that spans two
 * groups the first pass asked apart is now asked together: found and split like any positive.
 */
export function clearanceGroups(
  packs: readonly (readonly number[])[],
  passedOnce: readonly (readonly number[])[],
  status: readonly ScreenStatus[],
  termsOf: (group: readonly number[]) => readonly string[],
  crossSet: readonly (readonly number[])[],
): number[][] {
  const triggers = [
    ...status.flatMap((x, i) => (x === 'suppressed' ? [termsOf([i])] : [])),
    ...crossSet.map((g) => termsOf(g)),
  ].map((t) => new Set(t));
  /** Whether a group's terms with a set's own added would hold every term of a trigger. */
  const holdsTrigger = (terms: ReadonlySet<string>, added: readonly string[]) =>
    triggers.some((t) => t.size > 0 && [...t].every((term) => terms.has(term) || added.includes(term)));
  const packOf = new Map<number, number>();
  packs.forEach((pack, p) => {
    for (const i of pack) packOf.set(i, p);
  });
  /** Per pack, its groups (sets and their terms) in the order they were opened. */
  const open = new Map<number, { sets: number[]; terms: Set<string> }[]>();
  const placed = new Set<number>();
  for (const g of passedOnce) {
    for (const i of g) {
      if (status[i] !== 'clear' || placed.has(i)) continue;
      placed.add(i);
      const p = packOf.get(i) ?? -1;
      const groups = open.get(p) ?? [];
      open.set(p, groups);
      const own = termsOf([i]);
      const fits = groups.find((x) => !holdsTrigger(x.terms, own));
      if (fits) {
        fits.sets.push(i);
        for (const t of own) fits.terms.add(t);
      } else groups.push({ sets: [i], terms: new Set(own) });
    }
  }
  const out = [...open.values()].flatMap((groups) => groups.map((x) => x.sets));
  status.forEach((x, i) => {
    if (x === 'clear' && !placed.has(i)) out.push([i]);
  });
  return out;
}

type Answer = 'positive' | 'negative' | 'unresolved';

/**
 * Screen `sets` (the researcher's term sets) with group tests through `probe`. Deterministic for
 * a deterministic probe. Packs are tested in parallel, one round at a time.
 */
export async function screen(
  sets: readonly (readonly string[])[],
  probe: RoundProbe,
  options: Partial<ScreeningOptions> = {},
): Promise<ScreeningResult> {
  const o = { ...DEFAULT_SCREENING_OPTIONS, ...options };
  const batcher = new RoundBatcher(probe);
  const status: ScreenStatus[] = sets.map(() => 'clear');
  const crossSet: number[][] = [];
  const unresolved: number[][] = [];
  const termsOf = (group: readonly number[]) => [...new Set(group.flatMap((i) => sets[i] ?? []))];

  /** The second pass's rule (`clearance`) while it runs; the first pass passes on one delivery. */
  let rule: ScreeningOptions['clearance'];
  /** Groups that passed in the first pass, in the order they did. */
  const passedOnce: number[][] = [];

  /**
   * A group is positive after `need` positives (background loss removes messages too). It passes
   * on one delivery, or in the second pass once enough deliveries rule out a partial
   * suppression (`rule`). The first pass sends one message a round; the second every answer
   * still needed to pass, at once.
   */
  const ask = async (group: readonly number[], firstNeed: number): Promise<Answer> => {
    const need = rule ? Math.max(firstNeed, o.clearanceConfirm) : firstNeed;
    let positives = 0;
    let answers = 0;
    let voids = 0;
    while (positives < need) {
      const batch = rule ? Math.max(1, answersToPass(positives, rule) - answers) : 1;
      const rs = await Promise.all(Array.from({ length: batch }, () => batcher.send(termsOf(group))));
      for (const r of rs) {
        if (r === 'void') voids++;
        else {
          answers++;
          if (r === 'positive') positives++;
        }
      }
      if (positives >= need) break;
      if (passedAt(positives, answers, rule)) {
        if (!rule) passedOnce.push([...group]);
        return 'negative';
      }
      // the second pass sends many copies at once: it gives up on a question whose voids
      // outnumber its answers by `maxVoids` (a burst of lost controls), not on `maxVoids` voids
      if (voids > o.maxVoids + (rule ? answers : 0)) return 'unresolved';
    }
    return 'positive';
  };
  const needFor = (group: readonly number[]) => (group.length === 1 ? o.confirmSet : o.confirmPack);

  const markUnresolved = (group: readonly number[]) => {
    unresolved.push([...group]);
    for (const i of group) if (status[i] === 'clear') status[i] = 'unresolved';
  };

  /**
   * `group` is suppressed (tested, or inferred from its parent and its sibling); find what in it
   * is responsible. Returns 'negative' only for an inferred group that turns out not suppressed.
   */
  const resolve = async (group: readonly number[], inferred: boolean): Promise<'done' | 'negative'> => {
    if (group.length === 1) {
      if (inferred) {
        const a = await ask(group, o.confirmSet);
        if (a === 'negative') return 'negative';
        if (a === 'unresolved') {
          markUnresolved(group);
          return 'done';
        }
      }
      status[group[0]!] = 'suppressed';
      return 'done';
    }
    const half = Math.ceil(group.length / 2);
    const first = group.slice(0, half);
    const second = group.slice(half);
    let bothNegative: boolean;
    if (o.inferSecondHalf) {
      const a = await ask(first, needFor(first));
      if (a === 'negative') {
        // Hwang-style: the second half must hold the cause, unless the cause spans both halves
        bothNegative = (await resolve(second, true)) === 'negative';
      } else {
        if (a === 'unresolved') markUnresolved(first);
        await Promise.all([
          a === 'positive' ? resolve(first, false) : Promise.resolve(),
          ask(second, needFor(second)).then(async (b) => {
            if (b === 'positive') await resolve(second, false);
            if (b === 'unresolved') markUnresolved(second);
          }),
        ]);
        bothNegative = false;
      }
    } else {
      const answers = await Promise.all([first, second].map((p) => ask(p, needFor(p))));
      await Promise.all(
        [first, second].map((p, i) => {
          if (answers[i] === 'positive') return resolve(p, false);
          if (answers[i] === 'unresolved') markUnresolved(p);
          return Promise.resolve();
        }),
      );
      bothNegative = answers.every((x) => x === 'negative');
    }
    if (!bothNegative) return 'done';
    if (inferred) {
      const g = await ask(group, needFor(group));
      if (g === 'negative') return 'negative';
      if (g === 'unresolved') {
        markUnresolved(group);
        return 'done';
      }
    }
    // an inferred group whose re-test also passes was never suppressed: hand back to the parent
    const confirmed = await crossSetCombination(group);
    return inferred && !confirmed ? 'negative' : 'done';
  };

  /** Both halves pass but the whole is suppressed: terms from several sets trigger together. */
  const crossSetCombination = async (group: readonly number[]): Promise<boolean> => {
    // re-test the whole once more so a doubly lost message is not reported as a combination
    const again = await ask(group, o.confirmPack);
    if (again === 'negative') return false;
    if (again === 'unresolved') {
      markUnresolved(group);
      return true;
    }
    if (o.crossSetOneRound && (await leaveOneOut(group))) return true;
    // Set-level isolation with lazy confirmation: questions go out with the round's shared
    // controls; only the combinations found are confirmed (confirmSet positives in a row).
    const oracle = robustOracle(async (terms) => batcher.send(terms), {
      confirm: o.confirmSet,
      maxVoids: o.maxVoids,
    });
    const together = (subset: readonly number[]) => termsOf(subset);
    try {
      const found = await findMinimalSubsets(group, (s) => oracle.oracle(together(s)), {
        confirm: (s) => oracle.confirm(together(s)),
        recheck: oracle.confirmProvisional,
        maxSubsets: o.crossSetsPerGroup,
      });
      for (const m of found.minimal.filter((x) => x.length > 1)) {
        crossSet.push(m);
        for (const i of m) if (status[i] === 'clear') status[i] = 'cross-set';
      }
    } catch {
      markUnresolved(group);
    }
    return true;
  };

  /**
   * The group asked without each of its sets, all at once: a delivery is proof under the screen's
   * assumptions (a lost message looks like a suppression, never the reverse), so a set whose
   * removal lets the rest through is needed by every trigger in the group. A group of more than
   * `CROSS_SET_MAX` sets is first asked without each of about √(3n) blocks of sets, then without
   * each set of the blocks found needed (two rounds of about 2√(3n) questions, not n: a
   * combination has about three components). When the sets found needed are suppressed together
   * (at least two positives) and each is needed again, they are the one minimal combination:
   * each is needed, so no part of them triggers. A lost or void answer leaves a needed set out,
   * and then the sets found are not suppressed together: false, and the minimisation runs. A
   * single set found suppressed alone (a rule that fires only sometimes, which the first pass
   * cleared) is suppressed: the rounds judge it.
   */
  const leaveOneOut = async (group: readonly number[]): Promise<boolean> => {
    /** Of `parts` (disjoint parts of the group), those without which the rest is delivered. */
    const neededOf = async (parts: readonly (readonly number[])[]) => {
      const answers = await Promise.all(
        parts.map((part) => batcher.send(termsOf(group.filter((j) => !part.includes(j))))),
      );
      return parts.filter((_, k) => answers[k] === 'negative');
    };
    let candidates: readonly number[] = group;
    if (group.length > CROSS_SET_MAX) {
      const size = Math.ceil(group.length / Math.ceil(Math.sqrt(3 * group.length)));
      const blocks = Array.from({ length: Math.ceil(group.length / size) }, (_, b) =>
        group.slice(b * size, (b + 1) * size),
      );
      const needed = await neededOf(blocks);
      // more needed blocks than a combination has components: answers of a rule that fires only
      // sometimes, not one combination (the minimisation runs)
      if (needed.length === 0 || needed.length > CROSS_SET_MAX) return false;
      candidates = needed.flat();
    }
    const needed = (await neededOf(candidates.map((i) => [i]))).flat();
    if (needed.length === 0 || needed.length > CROSS_SET_MAX) return false;
    // A rule that fires only sometimes makes answers look like proof: its set is needed, and any
    // other set whose removal happened to meet a miss. So the sets found are suppressed together
    // at least twice, and the group without each is delivered again, in the same rounds.
    const [together, again] = await Promise.all([
      ask(needed, Math.max(2, o.confirmSet)),
      neededOf(needed.map((i) => [i])),
    ]);
    if (together !== 'positive' || again.length < needed.length) return false;
    if (needed.length === 1) status[needed[0]!] = 'suppressed';
    else {
      crossSet.push(needed);
      for (const i of needed) if (status[i] === 'clear') status[i] = 'cross-set';
    }
    return true;
  };

  const pass = (packs: number[][]) =>
    Promise.all(
      packs.map(async (pack) => {
        const a = await ask(pack, needFor(pack));
        if (a === 'positive') await resolve(pack, false);
        else if (a === 'unresolved') markUnresolved(pack);
      }),
    );
  const packs = packTermSets(sets, o);
  await pass(packs);
  if (o.clearance) {
    rule = o.clearance;
    await pass(clearanceGroups(packs, passedOnce, status, termsOf, crossSet));
  }
  return {
    status,
    suppressed: status.flatMap((s, i) => (s === 'suppressed' ? [i] : [])),
    crossSet,
    unresolved,
    tests: batcher.tests,
    rounds: batcher.rounds,
    packs: packs.length,
  };
}

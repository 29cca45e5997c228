/**
 * Screening scenarios for tests and the benchmark: benign filler term sets, suppressed term sets
 * built from real Citizen Lab combinations, and decoys (single components of those combinations,
 * which are not suppressed alone). Ground truth comes from the simulated censor, never assumed.
 */
import { benignTermSets } from './benign-terms.ts';
import type { KeywordEntry } from './citizenlab-data.ts';
import { type Censor, type SimRule, seededRandom } from './simulate.ts';
import type { SimScope } from './simulate-evidence.ts';
import { renderTerms } from './simulate-probes.ts';

export interface ScreeningScenario {
  sets: string[][];
  rules: SimRule[];
}

export interface ScenarioOptions {
  total: number;
  suppressed: number;
  /** Sets holding one component of a rule's combination (innocent alone). */
  decoys: number;
  /**
   * Extra rules whose components appear only as separate one-term sets, listed near each other
   * (as topical lists are): packs holding them are suppressed by a cross-set combination.
   */
  splitRules?: number;
  seed: number;
}

function shuffle<T>(items: readonly T[], rand: () => number): T[] {
  const a = [...items];
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [a[i], a[j]] = [a[j]!, a[i]!];
  }
  return a;
}

/** Combinations of 2–5 distinct components with no component inside another. */
export function usableCombinations(entries: readonly KeywordEntry[]): string[][] {
  return entries
    .map((e) => [...new Set(e.components)])
    .filter((c) => c.length >= 2 && c.length <= 5)
    .filter((c) => c.every((x, i) => c.every((y, j) => i === j || !y.includes(x))));
}

export function buildScreeningScenario(
  entries: readonly KeywordEntry[],
  o: ScenarioOptions,
): ScreeningScenario {
  const rand = seededRandom(o.seed);
  const combos = shuffle(usableCombinations(entries), rand).slice(0, o.suppressed);
  const rules: SimRule[] = combos.map((all, i) => ({ id: `cl-${i}`, all, action: 'drop' }));
  const filler = benignTermSets(o.total + o.suppressed, o.seed + 1);
  const suppressed = combos.map((c, i) => (rand() < 0.5 ? [...c] : [...c, filler[o.total - 1 - i]![0]!]));
  const decoys = Array.from({ length: o.decoys }, (_, i) => {
    const combo = combos[i % combos.length]!;
    return [combo[Math.floor(rand() * combo.length)]!];
  });
  const split = shuffle(usableCombinations(entries), rand)
    .filter((c) => !combos.includes(c))
    .slice(0, o.splitRules ?? 0);
  const splitCount = split.reduce((a, c) => a + c.length, 0);
  const benignCount = o.total - suppressed.length - decoys.length - splitCount;
  const sets = shuffle([...suppressed, ...decoys, ...filler.slice(1, 1 + benignCount)], rand);
  split.forEach((combo, i) => {
    rules.push({ id: `split-${i}`, all: combo, action: 'drop' });
    let at = Math.floor(rand() * sets.length);
    for (const part of combo) {
      sets.splice(at, 0, [part]);
      at += 1 + Math.floor(rand() * 4);
    }
  });
  return { sets, rules };
}

/** Ground truth: does the censor act on this term set sent alone? */
export function suppressedAlone(censor: Censor, set: readonly string[], scope: SimScope): boolean {
  return censor.wouldAct({ text: renderTerms(set), time: 0, ...scope }) !== undefined;
}

export interface Accuracy {
  truePositives: number;
  falsePositives: number;
  falseNegatives: number;
  precision: number;
  recall: number;
}

export function accuracy(found: readonly number[], truth: readonly number[]): Accuracy {
  const t = new Set(truth);
  const f = new Set(found);
  const tp = [...f].filter((i) => t.has(i)).length;
  const fp = f.size - tp;
  const fn = [...t].filter((i) => !f.has(i)).length;
  return {
    truePositives: tp,
    falsePositives: fp,
    falseNegatives: fn,
    precision: f.size === 0 ? 1 : tp / f.size,
    recall: t.size === 0 ? 1 : tp / t.size,
  };
}

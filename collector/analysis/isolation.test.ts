import { describe, expect, it } from 'vitest';
import { BENIGN_WORDS } from './benign-terms.ts';
import { citizenLabAvailable, loadCitizenLab } from './citizenlab-data.ts';
import {
  ContradictionError,
  ddmin,
  findMinimalSubsets,
  isolateTerms,
  type ProbeResult,
  quickXplain,
  robustOracle,
} from './isolation.ts';
import { createCensor, type SimRule, seededRandom } from './simulate.ts';
import { US_TO_CN_GROUP } from './simulate-evidence.ts';
import { simTermsProbe } from './simulate-probes.ts';

const T0 = Date.UTC(2026, 5, 1);

const asKey = (combos: readonly (readonly string[])[]) => combos.map((c) => [...c].sort().join('+')).sort();

function shuffle<T>(items: readonly T[], rand: () => number): T[] {
  const a = [...items];
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [a[i], a[j]] = [a[j]!, a[i]!];
  }
  return a;
}

/** Combinations of 2–5 components from the 709 and coronavirus lists, none inside another. */
function citizenLabCombinations(count: number, seed: number): string[][] {
  const all = [...loadCitizenLab('crackdown709'), ...loadCitizenLab('coronavirus')]
    .map((e) => e.components)
    .filter((c) => c.length >= 2 && c.length <= 5)
    .filter((c) => c.every((x, i) => c.every((y, j) => i === j || !y.includes(x))));
  return shuffle(all, seededRandom(seed)).slice(0, count);
}

function innocents(rules: readonly (readonly string[])[], count: number, rand: () => number): string[] {
  const parts = rules.flat();
  const ok = BENIGN_WORDS.filter((w) => !parts.some((p) => w.includes(p) || p.includes(w)));
  return shuffle(ok, rand).slice(0, count);
}

function setup(rules: SimRule[], loss: number, seed: number) {
  const censor = createCensor({ rules, backgroundLoss: loss }, seed);
  const sim = simTermsProbe(censor, {
    scope: US_TO_CN_GROUP,
    start: T0,
    roundSpacingMs: 60_000,
    controlText: '通知 天气 公园 谢谢',
  });
  const oracle = robustOracle(sim.probe);
  return { oracle, counters: oracle.counters, messages: () => sim.counters.tests + sim.counters.controls };
}

describe('ddmin and findMinimalSubsets', () => {
  it('finds a minimal subset with a deterministic predicate', async () => {
    const items = Array.from({ length: 16 }, (_, i) => i);
    const fails = async (s: readonly number[]) => [3, 11, 12].every((x) => s.includes(x));
    expect(await ddmin(items, fails)).toEqual([3, 11, 12]);
    expect(await quickXplain(items, fails)).toEqual([3, 11, 12]);
  });

  it('asks QuickXplain fewer questions than ddmin on a sparse combination', async () => {
    const items = Array.from({ length: 12 }, (_, i) => i);
    const count = (asked: Set<string>) => async (s: readonly number[]) => {
      asked.add(s.join(','));
      return [2, 9].every((x) => s.includes(x));
    };
    const a = new Set<string>();
    const b = new Set<string>();
    await ddmin(items, count(a));
    await quickXplain(items, count(b));
    expect(b.size).toBeLessThan(a.size);
  });

  it('finds every minimal subset when several overlap', async () => {
    const items = Array.from({ length: 12 }, (_, i) => i);
    const rules = [[1, 2], [2, 7, 9], [4]];
    const fails = async (s: readonly number[]) => rules.some((r) => r.every((x) => s.includes(x)));
    const r = await findMinimalSubsets(items, fails);
    expect(r.minimal.map((m) => m.join(',')).sort()).toEqual(['1,2', '2,7,9', '4']);
  });
});

describe('robustOracle', () => {
  it('trusts a delivery, confirms positives on demand with controls, and memoises', async () => {
    const script: ProbeResult[] = ['positive', 'negative', 'void', 'positive', 'positive', 'positive'];
    let calls = 0;
    const controls: boolean[] = [];
    const o = robustOracle(
      async (_terms, opts) => {
        controls.push(opts.control);
        return script[calls++] ?? 'negative';
      },
      { confirm: 3 },
    );
    expect(await o.oracle(['a'])).toBe(true); // provisional after one lost message
    expect(await o.confirm(['a'])).toBe(false); // the retest arrived: it was background loss
    expect(await o.oracle(['b'])).toBe(true); // void, then positive
    expect(await o.confirm(['b'])).toBe(true); // two more positives
    expect(await o.oracle(['b'])).toBe(true);
    expect(o.counters).toEqual({ questions: 2, probes: 6, cacheHits: 3, flipped: 1, inferred: 0 });
    // the first probe of a question goes without a control; retries and confirmations carry one
    expect(controls).toEqual([false, true, false, true, true, true]);
  });

  it('answers by monotonicity and overturns a positive contradicted by a negative superset', async () => {
    const answers = new Map<string, ProbeResult>([
      ['a', 'positive'], // a lost message
      ['a,b', 'negative'],
    ]);
    const o = robustOracle(async (terms) => answers.get([...terms].sort().join(',')) ?? 'negative');
    expect(await o.oracle(['a'])).toBe(true);
    await expect(o.oracle(['a', 'b'])).rejects.toBeInstanceOf(ContradictionError);
    expect(await o.oracle(['a'])).toBe(false); // overturned
    expect(await o.oracle(['b'])).toBe(false); // a subset of a negative: no probe
    expect(o.counters).toMatchObject({ questions: 2, probes: 2, flipped: 1, inferred: 1 });
  });

  it('asks a positive again bare or with a control, never more than asked, and trusts a delivery', async () => {
    const script: ProbeResult[] = ['positive', 'positive', 'void', 'positive', 'positive', 'negative'];
    let calls = 0;
    const controls: boolean[] = [];
    const o = robustOracle(async (_terms, opts) => {
      controls.push(opts.control);
      return script[calls++] ?? 'negative';
    });
    expect(await o.oracle(['a'])).toBe(true);
    expect(await o.reask(['a'], 2)).toBe(true); // one more probe, alone
    expect(await o.reask(['a'], 2)).toBe(true); // already has two positives: nothing sent
    expect(await o.reask(['a'], 3, { control: true })).toBe(true); // void (control lost), then positive
    expect(controls).toEqual([false, false, true, true]);
    expect(await o.oracle(['b'])).toBe(true);
    expect(await o.reask(['b'], 2)).toBe(false); // delivered: it was a lost message
    expect(await o.reask(['b'], 5)).toBe(false); // a negative is never asked again
    expect(calls).toBe(6);
    expect(o.counters).toMatchObject({ questions: 2, probes: 6, flipped: 1 });
  });

  it('does not infer supersets from a positive confirmed without controls', async () => {
    let calls = 0;
    const o = robustOracle(async () => {
      calls++;
      return 'positive';
    });
    expect(await o.reask(['x'], 3)).toBe(true); // three positives, none with a control
    expect(await o.oracle(['x', 'y'])).toBe(true);
    expect(calls).toBe(4); // the superset was probed, not inferred
    expect(await o.confirm(['z'])).toBe(true); // three positives, two with controls
    expect(await o.oracle(['z', 'y'])).toBe(true);
    expect(calls).toBe(7); // inferred
  });

  it('confirms at once when not lazy', async () => {
    const script: ProbeResult[] = ['positive', 'negative'];
    let calls = 0;
    const o = robustOracle(async () => script[calls++] ?? 'negative', { lazy: false });
    expect(await o.oracle(['a'])).toBe(false);
  });
});

describe.skipIf(!citizenLabAvailable())('isolateTerms on Citizen Lab combinations', () => {
  it('finds the exact minimal combination among innocent terms at 3% loss, with message counts', async () => {
    const combos = citizenLabCombinations(25, 42);
    const rand = seededRandom(7);
    let total = 0;
    for (const [i, combo] of combos.entries()) {
      const { oracle, messages } = setup([{ id: `r${i}`, all: combo, action: 'drop' }], 0.03, 100 + i);
      const message = shuffle([...combo, ...innocents([combo], 5, rand)], rand);
      const r = await isolateTerms(message, oracle);
      expect(asKey(r.combinations)).toEqual(asKey([combo]));
      total += messages();
    }
    const perCombination = total / combos.length;
    // tests + controls per censored combination; Xiong & Knockel report ~35 (character level)
    expect(perCombination).toBeLessThan(35);
  });

  it('finds two overlapping rules in one message', async () => {
    const [a, b] = citizenLabCombinations(2, 9) as [string[], string[]];
    const shared = a[0]!;
    const second = [shared, ...b.slice(1)];
    const rules: SimRule[] = [
      { id: 'a', all: a, action: 'drop' },
      { id: 'b', all: second, action: 'drop' },
    ];
    const rand = seededRandom(3);
    const message = shuffle([...new Set([...a, ...second, ...innocents([a, second], 4, rand)])], rand);
    const { oracle } = setup(rules, 0.03, 5);
    const r = await isolateTerms(message, oracle);
    expect(asKey(r.combinations)).toEqual(asKey([a, second]));
  });

  it('stays exact under 10% background loss with four confirmations', async () => {
    const combos = citizenLabCombinations(10, 77);
    const rand = seededRandom(11);
    for (const [i, combo] of combos.entries()) {
      const censor = createCensor(
        { rules: [{ id: 'r', all: combo, action: 'drop' }], backgroundLoss: 0.1 },
        i,
      );
      const sim = simTermsProbe(censor, {
        scope: US_TO_CN_GROUP,
        start: T0,
        roundSpacingMs: 60_000,
        controlText: '通知 天气 公园 谢谢',
      });
      const oracle = robustOracle(sim.probe, { confirm: 4 });
      const message = shuffle([...combo, ...innocents([combo], 5, rand)], rand);
      expect(asKey((await isolateTerms(message, oracle)).combinations)).toEqual(asKey([combo]));
    }
  });

  it('returns nothing for a message that is not suppressed', async () => {
    const { oracle } = setup([{ id: 'x', all: ['六四', '刘晓波'], action: 'drop' }], 0.03, 1);
    expect((await isolateTerms(['天气', '六四', '公园'], oracle)).combinations).toEqual([]);
  });
});

import { describe, expect, it } from 'vitest';
import { benignTermSets } from './benign-terms.ts';
import { citizenLabAvailable, loadCitizenLab } from './citizenlab-data.ts';
import type { ProbeResult } from './oracle.ts';
import {
  answersToPass,
  clearanceGroups,
  hwangGroupSize,
  packTermSets,
  passedAt,
  type ScreenStatus,
  screen,
} from './screening.ts';
import { type CensorConfig, createCensor, type SimRule } from './simulate.ts';
import { US_TO_CN_GROUP } from './simulate-evidence.ts';
import { simRoundProbe } from './simulate-probes.ts';
import { accuracy, buildScreeningScenario, suppressedAlone } from './simulate-screening.ts';

const T0 = Date.UTC(2026, 5, 1);
const HOUR = 3_600_000;

function probeFor(config: CensorConfig, seed: number) {
  const censor = createCensor(config, seed);
  const sim = simRoundProbe(censor, {
    scope: US_TO_CN_GROUP,
    start: T0,
    roundSpacingMs: HOUR,
    controlText: '通知 天气 公园 谢谢',
  });
  return { censor, ...sim };
}

describe('packTermSets', () => {
  it('uses the Hwang group size, the character budget and a seeded order', () => {
    expect(hwangGroupSize(1000, 10)).toBe(64);
    expect(hwangGroupSize(10, 10)).toBe(1);
    const sets = Array.from({ length: 200 }, (_, i) => [`词${i}`]);
    const packs = packTermSets(sets, { maxChars: 60, separatorChars: 3 });
    expect(packs.flat()).toEqual(sets.map((_, i) => i));
    for (const p of packs) {
      const chars = p.reduce((a, i) => a + [...sets[i]![0]!].length + 3, 0);
      expect(chars).toBeLessThanOrEqual(60);
    }
    expect(packTermSets(sets, { maxChars: 10_000, expectedPrevalence: 0.05 })[0]).toHaveLength(16);
    const shuffled = packTermSets(sets, { maxChars: 60, shuffleSeed: 7 });
    expect(shuffled.flat()).not.toEqual(sets.map((_, i) => i));
    expect([...shuffled.flat()].sort((a, b) => a - b)).toEqual(sets.map((_, i) => i));
    expect(packTermSets(sets, { maxChars: 60, shuffleSeed: 7 })).toEqual(shuffled);
  });
});

describe('screen', () => {
  it('reports a cross-set combination instead of blaming either set', async () => {
    const sets = [['天气'], ['709'], ['公园', '咖啡'], ['律师'], ['足球'], ['熊猫']];
    const rules: SimRule[] = [{ id: 'combo', all: ['709', '律师'], action: 'drop' }];
    const { probe } = probeFor({ rules, backgroundLoss: 0.03 }, 1);
    const r = await screen(sets, probe);
    expect(r.suppressed).toEqual([]);
    expect(r.crossSet).toEqual([[1, 3]]);
    expect(r.status).toEqual(['clear', 'cross-set', 'clear', 'cross-set', 'clear', 'clear']);
  });

  it('finds a set suppressed alone next to a cross-set combination in the same pack', async () => {
    const sets = [['709'], ['天气'], ['六四', '刘晓波', '公园'], ['律师'], ['足球']];
    const rules: SimRule[] = [
      { id: 'combo', all: ['709', '律师'], action: 'drop' },
      { id: 'lxb', all: ['六四', '刘晓波'], action: 'drop' },
    ];
    const { probe } = probeFor({ rules, backgroundLoss: 0.03 }, 2);
    const r = await screen(sets, probe);
    expect(r.suppressed).toEqual([2]);
    expect(r.status[0]).not.toBe('suppressed');
    expect(r.status[3]).not.toBe('suppressed');
  });

  it('finds a cross-set combination by asking the pack without each block, then each set, in fewer rounds', async () => {
    // 32 sets in one pack, three of them a combination that is dropped only together
    const parts = ['709', '律师', '维权'];
    let oneRound = { rounds: 0, tests: 0, exact: 0 };
    let sequential = { rounds: 0, tests: 0, exact: 0 };
    for (let seed = 1; seed <= 30; seed++) {
      const sets = benignTermSets(29, seed);
      const at = [3 + (seed % 7), 12 + (seed % 9), 24 + (seed % 5)];
      at.forEach((i, k) => {
        sets.splice(i, 0, [parts[k]!]);
      });
      const rules: SimRule[] = [{ id: 'combo', all: parts, action: 'drop' }];
      const run = async (crossSetOneRound: boolean, sum: typeof oneRound) => {
        const { probe } = probeFor({ rules, backgroundLoss: 0.03 }, seed);
        const r = await screen(sets, probe, { crossSetOneRound });
        expect(r.packs).toBe(1);
        expect(r.suppressed, `seed ${seed}`).toEqual([]);
        const exact = JSON.stringify(r.crossSet) === JSON.stringify([at]);
        return {
          rounds: sum.rounds + r.rounds,
          tests: sum.tests + r.tests,
          exact: sum.exact + (exact ? 1 : 0),
        };
      };
      oneRound = await run(true, oneRound);
      sequential = await run(false, sequential);
    }
    expect(oneRound.exact).toBeGreaterThanOrEqual(28);
    expect(oneRound.exact).toBeGreaterThanOrEqual(sequential.exact);
    // rounds of questions at once where the minimisation asks one a round, for about as many
    // messages (here 640 rounds and 1,239 tests against 1,165 and 1,166)
    expect(oneRound.rounds).toBeLessThan(0.75 * sequential.rounds);
    expect(oneRound.tests).toBeLessThan(1.15 * sequential.tests);
  });

  it('reports a set the one-round search finds needed alone as suppressed, not as a combination', async () => {
    // 词5 is dropped except in a message of exactly 8 sets: the first pass's half that carried
    // it arrived, so the pack looks like a cross-set combination; the sequential search then
    // ends on a false one (词5 with the last set it asked about)
    const sets = Array.from({ length: 16 }, (_, i) => [`词${i}`]);
    const probe = async (messages: readonly (readonly string[])[]) =>
      messages.map((m): ProbeResult => (m.includes('词5') && m.length !== 8 ? 'positive' : 'negative'));
    const options = { confirmSet: 1, shuffleSeed: 1 };
    const oneRound = await screen(sets, probe, { ...options, crossSetOneRound: true });
    expect(oneRound).toMatchObject({ packs: 1, suppressed: [5], crossSet: [], unresolved: [] });
    const sequential = await screen(sets, probe, { ...options, crossSetOneRound: false });
    expect(sequential.suppressed).toEqual([]);
    expect(sequential.crossSet).toHaveLength(1);
    expect(sequential.crossSet[0]).toContain(5);
  });

  it('retries rounds voided by an outage instead of reading them as suppression', async () => {
    const sets = Array.from({ length: 40 }, (_, i) => [`天气${i}`]);
    sets[17] = ['六四', '刘晓波'];
    const rules: SimRule[] = [{ id: 'lxb', all: ['六四', '刘晓波'], action: 'drop' }];
    const outages = [{ from: T0, to: T0 + 2 * HOUR }];
    const { probe, counters } = probeFor({ rules, backgroundLoss: 0.03, outages }, 3);
    const r = await screen(sets, probe);
    expect(r.suppressed).toEqual([17]);
    expect(r.unresolved).toEqual([]);
    expect(counters.rounds).toBeGreaterThan(r.rounds - 1);
  });

  describe.skipIf(!citizenLabAvailable())('on 1,000 term sets from Citizen Lab combinations', () => {
    // Read lazily: a skipped describe still runs its body while collecting.
    const entries = () => [...loadCitizenLab('crackdown709'), ...loadCitizenLab('coronavirus')];
    it.each([1, 2, 3])(
      'finds all suppressed sets at 3%% loss with precision and recall 1, cross-set groups apart (seed %i)',
      async (seed) => {
        const scenario = buildScreeningScenario(entries(), {
          total: 1000,
          suppressed: 10,
          decoys: 20,
          splitRules: 2,
          seed,
        });
        const { censor, probe, counters } = probeFor({ rules: scenario.rules, backgroundLoss: 0.03 }, seed);
        const truth = scenario.sets.flatMap((s, i) =>
          suppressedAlone(censor, s, US_TO_CN_GROUP) ? [i] : [],
        );
        expect(truth.length).toBeGreaterThanOrEqual(10);
        const r = await screen(scenario.sets, probe);
        const acc = accuracy(r.suppressed, truth);
        expect(acc.precision).toBe(1);
        expect(acc.recall).toBe(1);
        // every reported cross-set group really is suppressed only together
        for (const g of r.crossSet) {
          expect(g.every((i) => !truth.includes(i))).toBe(true);
          expect(
            suppressedAlone(
              censor,
              g.flatMap((i) => scenario.sets[i]!),
              US_TO_CN_GROUP,
            ),
          ).toBe(true);
        }
        const messages = counters.tests + counters.controls;
        expect(messages).toBeLessThan(0.35 * scenario.sets.length);
        expect(r.unresolved).toEqual([]);
      },
    );
  });
});

describe('clearance as strong as a sequential none', () => {
  const rule = { margin: 0.2, beta: 0.1 };

  it('needs ceil(ln beta / ln(1 - margin)) deliveries without a positive, more after one', () => {
    expect(answersToPass(0, rule)).toBe(11);
    expect(passedAt(0, 10, rule)).toBe(false);
    expect(passedAt(0, 11, rule)).toBe(true);
    expect(answersToPass(1, rule)).toBe(18);
    // without a rule one delivery passes (deterministic rules)
    expect(answersToPass(0, undefined)).toBe(1);
  });

  it('a partial drop (p = 0.5) that one delivery would clear is found by the second pass', async () => {
    const innocent = [
      '天气',
      '公园',
      '咖啡',
      '足球',
      '熊猫',
      '图书馆',
      '火车站',
      '音乐会',
      '电影院',
      '博物馆',
    ];
    const sets = [...innocent.map((t) => [t]), ['律师']];
    const rules: SimRule[] = [{ id: 'partial', all: ['律师'], action: 'drop', probability: 0.5 }];
    let clearedByOne = 0;
    let innocentCleared = 0;
    for (let seed = 1; seed <= 20; seed++) {
      const once = await screen(sets, probeFor({ rules, backgroundLoss: 0.03 }, seed).probe, {
        shuffleSeed: seed,
        confirmSet: 1,
      });
      if (once.status[10] === 'clear') clearedByOne++;
      const r = await screen(sets, probeFor({ rules, backgroundLoss: 0.03 }, seed).probe, {
        shuffleSeed: seed,
        confirmSet: 1,
        clearance: rule,
      });
      expect(r.status[10], `seed ${seed}`).not.toBe('clear');
      // and most innocent sets are still cleared (some that shared the partly dropped set's
      // group may be left to the rounds)
      innocentCleared += r.status.slice(0, 10).filter((x) => x === 'clear').length;
    }
    expect(innocentCleared).toBeGreaterThanOrEqual(0.8 * 200);
    // the first pass alone clears the partly dropped set about half the time
    expect(clearedByOne).toBeGreaterThan(3);
  });

  it('asks again in one group per pack what the first pass cleared in many, never a known trigger', () => {
    // pack 0: sets 0–7, set 7 suppressed, so its cleared sets passed as halves and quarters;
    // pack 1: sets 8–12, where 10 is the combination of 8's and 9's terms (suppressed), 8 and
    // 9 passed apart; set 12 was cleared inside a cross-set search (in no passed group)
    const sets = [...Array.from({ length: 8 }, (_, i) => [`t${i}`]), ['a'], ['b'], ['a', 'b'], ['c'], ['d']];
    const status: ScreenStatus[] = sets.map(() => 'clear');
    status[7] = 'suppressed';
    status[10] = 'suppressed';
    const packs = [
      [0, 1, 2, 3, 4, 5, 6, 7],
      [8, 9, 10, 11, 12],
    ];
    const passedOnce = [[0, 1, 2, 3], [4, 5], [6], [8], [9, 11]];
    const termsOf = (g: readonly number[]) => [...new Set(g.flatMap((i) => sets[i] ?? []))];
    expect(clearanceGroups(packs, passedOnce, status, termsOf, [])).toEqual([
      [0, 1, 2, 3, 4, 5, 6],
      [8, 11],
      [9],
      [12],
    ]);
    // a cross-set combination the first pass found is a trigger too: its members stay apart
    status[4] = 'cross-set';
    status[5] = 'cross-set';
    // (and sets in no group that passed, here all of pack 1, go alone)
    expect(clearanceGroups(packs, [[0, 1], [2, 3], [6]], status, termsOf, [[0, 2]])).toEqual([
      [0, 1, 3, 6],
      [2],
      [8],
      [9],
      [11],
      [12],
    ]);
  });
});

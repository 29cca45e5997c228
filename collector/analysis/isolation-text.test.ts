import { describe, expect, it } from 'vitest';
import { benignArticle } from './benign-terms.ts';
import { citizenLabAvailable, loadCitizenLab } from './citizenlab-data.ts';
import { robustOracle } from './isolation.ts';
import { isolateText } from './isolation-text.ts';
import { createCensor, type SimRule } from './simulate.ts';
import { US_TO_CN_GROUP } from './simulate-evidence.ts';
import { simTextProbe } from './simulate-probes.ts';
import { usableCombinations } from './simulate-screening.ts';

const sorted = (xs: readonly string[]) => [...xs].sort();

function textOracle(rules: SimRule[], loss: number, seed: number) {
  const censor = createCensor({ rules, backgroundLoss: loss }, seed);
  const sim = simTextProbe(censor, {
    scope: US_TO_CN_GROUP,
    start: Date.UTC(2026, 5, 1),
    roundSpacingMs: 60_000,
    controlText: '通知 天气 公园 谢谢',
  });
  return { oracle: robustOracle(sim.probe), counters: sim.counters };
}

describe('isolateText', () => {
  it('finds the censored part of a single long term', async () => {
    const { oracle } = textOracle([{ id: 'lxb', all: ['刘晓波'], action: 'drop' }], 0.03, 1);
    const r = await isolateText('纪念刘晓波先生逝世八周年的活动通知', oracle);
    expect(r.components).toEqual(['刘晓波']);
  });

  it('refines one long term of a combination to the part the censor matches', async () => {
    const { oracle } = textOracle([{ id: 'c', all: ['六四', '刘晓波'], action: 'drop' }], 0.03, 3);
    const r = await isolateText('纪念刘晓波先生逝世八周年', oracle, { context: ['六四'] });
    expect(r.components).toEqual(['刘晓波']);
  });

  it('returns nothing for a text that is not suppressed', async () => {
    const { oracle } = textOracle([{ id: 'lxb', all: ['刘晓波', '六四'], action: 'drop' }], 0.03, 2);
    expect((await isolateText('今天天气很好，刘晓波，我们去公园', oracle)).components).toEqual([]);
  });

  it.skipIf(!citizenLabAvailable())(
    'finds the exact components of Citizen Lab combinations inside a 1,500-character article at 3% loss',
    async () => {
      const entries = [...loadCitizenLab('crackdown709'), ...loadCitizenLab('coronavirus')];
      const combos = usableCombinations(entries).filter((_, i) => i % 41 === 0);
      expect(combos.length).toBeGreaterThanOrEqual(15);
      let messages = 0;
      for (const [i, combo] of combos.entries()) {
        const { oracle, counters } = textOracle([{ id: 'r', all: combo, action: 'drop' }], 0.03, 100 + i);
        const article = benignArticle(combo, 1500, 200 + i);
        const r = await isolateText(article.text, oracle);
        expect(sorted(r.components)).toEqual(sorted(combo));
        messages += counters.tests + counters.controls;
      }
      // about log2(1500) per component end plus the start, confirmations and controls
      expect(messages / combos.length).toBeLessThan(120);
    },
  );
});

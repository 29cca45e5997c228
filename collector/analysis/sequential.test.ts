import { describe, expect, it } from 'vitest';
import { INITIAL_SEQUENTIAL_STATE, type SequentialDecision, sequentialLook, spent } from './sequential.ts';
import { type CensorConfig, createCensor } from './simulate.ts';
import { addPair, emptyEvidence, sendPair, US_TO_CN_GROUP } from './simulate-evidence.ts';

const T0 = Date.UTC(2026, 5, 1);
const MIN = 60_000;
const TEST = '消息 六四 刘晓波 今天';
const CONTROL = '消息 天气 公园 今天';
const LOOK_EVERY = 4;

interface Run {
  decision: SequentialDecision;
  pairs: number;
  alphaSpent: number;
  betaSpent: number;
}

/** Send pairs in rounds of LOOK_EVERY and look after each round until settled. */
function run(config: Partial<CensorConfig>, seed: number): Run {
  const censor = createCensor({ rules: [], backgroundLoss: 0.03, ...config }, seed);
  let state = INITIAL_SEQUENTIAL_STATE;
  const evidence = emptyEvidence();
  for (let i = 0; ; i++) {
    addPair(evidence, sendPair(censor, TEST, CONTROL, US_TO_CN_GROUP, T0 + i * 10 * MIN));
    if ((i + 1) % LOOK_EVERY !== 0) continue;
    const step = sequentialLook(state, evidence);
    state = step.state;
    if (step.decision.kind === 'settled') {
      return {
        decision: step.decision,
        pairs: i + 1,
        alphaSpent: state.alphaSpent,
        betaSpent: state.betaSpent,
      };
    }
  }
}

function summarise(runs: Run[]) {
  const verdicts = new Map<string, number>();
  for (const r of runs) {
    const v = r.decision.kind === 'settled' ? r.decision.verdict : 'continue';
    verdicts.set(v, (verdicts.get(v) ?? 0) + 1);
  }
  const meanPairs = runs.reduce((s, r) => s + r.pairs, 0) / runs.length;
  return { verdicts, meanPairs, rate: (v: string) => (verdicts.get(v) ?? 0) / runs.length };
}

const seeds = (base: number, n: number) => Array.from({ length: n }, (_, i) => base + i);

describe('sequentialLook', () => {
  it('spends all of alpha by the end and little at the start', () => {
    expect(spent(0.05, 1, 'pocock')).toBeCloseTo(0.05, 12);
    expect(spent(0.05, 1, 'obrien-fleming')).toBeCloseTo(0.05, 6);
    expect(spent(0.05, 0.1, 'obrien-fleming')).toBeLessThan(1e-6);
    expect(spent(0.05, 0.1, 'pocock')).toBeGreaterThan(0.005);
  });

  it('keeps false findings below alpha with 3% background loss and outages (400 seeded runs)', () => {
    const outages = [{ from: T0 + 60 * MIN, to: T0 + 120 * MIN }];
    const runs = [
      ...seeds(1, 200).map((s) => run({}, s)),
      ...seeds(1000, 200).map((s) => run({ outages, backgroundLoss: 0.05 }, s)),
    ];
    const { rate, meanPairs } = summarise(runs);
    const falseFindings = 1 - rate('none') - rate('inconclusive');
    expect(falseFindings).toBeLessThanOrEqual(0.05);
    // the design never spends more error than it has
    expect(Math.max(...runs.map((r) => r.alphaSpent))).toBeLessThanOrEqual(0.05 + 1e-12);
    expect(Math.max(...runs.map((r) => r.betaSpent))).toBeLessThanOrEqual(0.1 + 1e-12);
    expect(rate('none')).toBeGreaterThan(0.9);
    expect(meanPairs).toBeLessThan(45);
  });

  it('keeps false findings below alpha at 10% background loss (300 seeded runs)', () => {
    const { rate } = summarise(seeds(3000, 300).map((s) => run({ backgroundLoss: 0.1 }, s)));
    expect(1 - rate('none') - rate('inconclusive')).toBeLessThanOrEqual(0.05);
  });

  it('keeps missed effects at the margin below beta (300 seeded runs, drop probability 0.25)', () => {
    const rules = [{ id: 'p25', all: ['六四', '刘晓波'], action: 'drop' as const, probability: 0.25 }];
    const { rate } = summarise(seeds(5000, 300).map((s) => run({ rules }, s)));
    expect(rate('none')).toBeLessThanOrEqual(0.1);
    expect(rate('suppressed')).toBeGreaterThan(0.75);
  });

  it('settles a deterministic drop within a few rounds', () => {
    const rules = [{ id: 'd', all: ['六四', '刘晓波'], action: 'drop' as const }];
    const { rate, meanPairs } = summarise(seeds(9000, 100).map((s) => run({ rules }, s)));
    expect(rate('suppressed')).toBe(1);
    expect(meanPairs).toBeLessThanOrEqual(9);
  });

  it('keeps a share of beta for the last look, which settles `none` on plain no-effect evidence', () => {
    // 7 of 80 test canaries lost against 1 of 80 controls (3% background loss, an unlucky test arm)
    const e = emptyEvidence();
    e.test.missing = 7;
    e.test.delivered = 73;
    e.control.missing = 1;
    e.control.delivered = 79;
    const stateAt76 = (finalBetaShare: number) => ({
      looks: 19,
      alphaSpent: spent(0.05, 76 / 80, 'pocock'),
      betaSpent: (1 - finalBetaShare) * spent(0.1, 76 / 80, 'pocock'),
      lastPairs: 76,
    });
    const kept = sequentialLook(stateAt76(0.25), e);
    expect(kept.decision).toMatchObject({ kind: 'settled', verdict: 'none', pairs: 80 });
    expect(kept.state.betaSpent).toBeCloseTo(0.1, 12);
    // spending it all before the last look leaves it too little to decide
    const spentAll = sequentialLook(stateAt76(0), e, { finalBetaShare: 0 });
    expect(spentAll.decision).toMatchObject({ kind: 'settled', verdict: 'inconclusive', pairs: 80 });
    // the looks before the last spend at most (1 − share)·beta
    const e76 = emptyEvidence();
    e76.test.missing = 7;
    e76.test.delivered = 69;
    e76.control.missing = 1;
    e76.control.delivered = 75;
    const look = sequentialLook(
      { ...stateAt76(0.25), betaSpent: 0.75 * spent(0.1, 72 / 80, 'pocock'), lastPairs: 72, looks: 18 },
      e76,
    );
    expect(look.decision.kind).toBe('continue');
    expect(look.state.betaSpent).toBeCloseTo(0.75 * spent(0.1, 76 / 80, 'pocock'), 12);
  });

  it('does not spend error on a look without new pairs and stays settled', () => {
    const e = emptyEvidence();
    e.test.missing = 8;
    e.control.delivered = 8;
    const first = sequentialLook(INITIAL_SEQUENTIAL_STATE, e);
    expect(first.decision.kind).toBe('settled');
    const again = sequentialLook(first.state, e);
    expect(again.state).toBe(first.state);
    const small = emptyEvidence();
    small.test.missing = 2;
    small.control.delivered = 2;
    const early = sequentialLook(INITIAL_SEQUENTIAL_STATE, small);
    expect(early.decision.kind).toBe('continue');
    expect(early.state.alphaSpent).toBe(0);
  });
});

import { describe, expect, it } from 'vitest';
import { type CensorConfig, createCensor, type SimRule } from './simulate.ts';
import { collectEvidence, US_TO_CN_GROUP } from './simulate-evidence.ts';
import { buildEvidence, type Evidence, judge, judgeAll } from './verdict.ts';

const T0 = Date.UTC(2026, 5, 1);
const MIN = 60_000;
const TEST = '消息 709 律师 维权 今天';
const CONTROL = '消息 天气 晴朗 公园 今天';

function rule(action: SimRule['action'], extra: Partial<SimRule> = {}): SimRule {
  return { id: action, all: ['709', '律师'], action, delayMs: 20_000, ...extra };
}

function evidenceFor(config: Partial<CensorConfig>, seed: number, pairs = 40): Evidence {
  const censor = createCensor({ rules: [], backgroundLoss: 0.03, ...config }, seed);
  return collectEvidence(censor, TEST, CONTROL, US_TO_CN_GROUP, {
    pairs,
    start: T0,
    spacingMs: 10 * MIN,
    deadlineMs: 60_000,
  });
}

describe('judge', () => {
  it.each([
    ['drop', 'suppressed'],
    ['delay', 'delayed'],
    ['notice', 'rejected'],
    ['replace', 'altered'],
  ] as const)('gives %s rules the verdict %s', (action, verdict) => {
    for (const seed of [1, 2, 3]) {
      const f = judge(evidenceFor({ rules: [rule(action)] }, seed));
      expect(f.verdict).toBe(verdict);
      expect(f.p).toBeLessThan(0.001);
      expect(f.n_test).toBe(40);
    }
  });

  it('reports a delay beyond the deadline as delayed from outcome counts alone', () => {
    const f = judge(evidenceFor({ rules: [rule('delay', { delayMs: 120_000 })] }, 5));
    expect(f.verdict).toBe('delayed');
    expect(f.kind).toBe('delayed');
    expect(f.rate_test).toBeGreaterThan(0.8);
  });

  it('gives none under 3% background loss in both arms', () => {
    for (let seed = 10; seed < 30; seed++) {
      const f = judge(evidenceFor({}, seed, 60));
      expect(f.verdict).toBe('none');
    }
  });

  it('gives none when an outage hits both arms', () => {
    const outages = [{ from: T0 + 100 * MIN, to: T0 + 250 * MIN }];
    const f = judge(evidenceFor({ outages }, 7, 60));
    expect(f.rate_test).toBeGreaterThan(0.2);
    expect(f.rate_control).toBeGreaterThan(0.2);
    expect(f.verdict).toBe('none');
  });

  it('is inconclusive while n is too small to decide either way', () => {
    expect(judge(evidenceFor({ rules: [rule('drop')] }, 1, 3)).verdict).toBe('inconclusive');
    expect(judge(evidenceFor({}, 1, 4)).verdict).toBe('inconclusive');
    const empty = judge({
      test: { delivered: 0, delayed: 0, missing: 0, altered: 0, rejected: 0 },
      control: { delivered: 2, delayed: 0, missing: 0, altered: 0, rejected: 0 },
    });
    expect(empty.verdict).toBe('inconclusive');
  });

  it('does not flag a rule outside the scope of the recipient', () => {
    const f = judge(evidenceFor({ rules: [rule('drop', { scope: { recipientRegion: ['TW'] } })] }, 3, 60));
    expect(f.verdict).toBe('none');
  });

  it('gives none, not a latency effect, when latencies are a few ms around zero (one clock)', () => {
    // As a probe that sends and receives on one clock sees it: -1..2 ms, test a hair slower.
    const n = 60;
    const e: Evidence = {
      test: { delivered: n, delayed: 0, missing: 0, altered: 0, rejected: 0 },
      control: { delivered: n - 1, delayed: 0, missing: 1, altered: 0, rejected: 0 },
      latencyTestMs: Array.from({ length: n }, (_, i) => (i % 3 === 0 ? 2 : 1)),
      latencyControlMs: Array.from({ length: n - 1 }, (_, i) => (i % 2 === 0 ? -1 : 0)),
    };
    const f = judge(e);
    expect(f.verdict).toBe('none');
    // the same shape with a real delay (seconds) is still a latency finding
    const slow = judge({ ...e, latencyTestMs: e.latencyTestMs?.map((x) => x + 5000) });
    expect(slow.verdict).toBe('delayed');
  });

  it('reports rates and a Wilson interval for the verdict kind', () => {
    const f = judge(evidenceFor({ rules: [rule('drop')] }, 4));
    expect(f.kind).toBe('missing');
    expect(f.rate_test).toBeGreaterThan(0.9);
    expect(f.rate_control).toBeLessThan(0.15);
    expect(f.ci[0]).toBeLessThan(f.rate_test);
    expect(f.ci[1]).toBeGreaterThanOrEqual(f.rate_test);
    expect(f.ci_diff[0]).toBeGreaterThan(0.5);
  });
});

describe('judgeAll', () => {
  it('adjusts for multiplicity so marginal results among many nulls stay unflagged', () => {
    // 1 clear effect + a borderline one (family p ≈ 0.02 alone) among 30 null term sets
    const borderline: Evidence = {
      test: { delivered: 12, delayed: 0, missing: 8, altered: 0, rejected: 0 },
      control: { delivered: 19, delayed: 0, missing: 1, altered: 0, rejected: 0 },
    };
    const alone = judge(borderline);
    expect(alone.p).toBeCloseTo(0.01966, 4);
    expect(alone.verdict).toBe('suppressed');
    const family = [evidenceFor({ rules: [rule('drop')] }, 1), borderline];
    for (let s = 100; s < 130; s++) family.push(evidenceFor({}, s, 60));
    const findings = judgeAll(family);
    expect(findings[0]!.verdict).toBe('suppressed');
    expect(findings[1]!.verdict).toBe('inconclusive');
    expect(findings[1]!.q).toBeGreaterThan(findings[1]!.p);
    expect(findings.slice(2).every((f) => f.verdict === 'none')).toBe(true);
  });
});

describe('buildEvidence', () => {
  it('counts finalised outcomes per arm, leaves out failed and pending, keeps arrival latencies', () => {
    const e = buildEvidence([
      { kind: 'test', status: 'missing' },
      { kind: 'test', status: 'delivered', latencyMs: 300 },
      { kind: 'test', status: 'failed' },
      { kind: 'control', status: 'delivered', latencyMs: 250 },
      { kind: 'control', status: 'pending' },
      { kind: 'control', status: 'delayed', latencyMs: 90_000 },
    ]);
    expect(e.test).toEqual({ delivered: 1, delayed: 0, missing: 1, altered: 0, rejected: 0 });
    expect(e.control).toEqual({ delivered: 1, delayed: 1, missing: 0, altered: 0, rejected: 0 });
    expect(e.latencyTestMs).toEqual([300]);
    expect(e.latencyControlMs).toEqual([250, 90_000]);
  });
});

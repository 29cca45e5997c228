import { describe, expect, it } from 'vitest';
import { detectChanges, evidenceWithoutOutages, isOutage, type WindowCounts } from './changepoint.ts';
import { type CensorConfig, createCensor, type SimRule } from './simulate.ts';
import { addPair, emptyEvidence, sendPair, US_TO_CN_GROUP } from './simulate-evidence.ts';
import { judge } from './verdict.ts';

const T0 = Date.UTC(2026, 5, 1);
const HOUR = 3_600_000;
const TEST = '通知 六四 刘晓波 谢谢';
const CONTROL = '通知 天气 公园 谢谢';

/** `count` hourly windows of `pairs` test/control pairs each. */
function series(config: Partial<CensorConfig>, seed: number, count = 60, pairs = 4): WindowCounts[] {
  const censor = createCensor({ rules: [], backgroundLoss: 0.03, ...config }, seed);
  return Array.from({ length: count }, (_, w) => {
    const e = emptyEvidence();
    const from = T0 + w * HOUR;
    for (let i = 0; i < pairs; i++)
      addPair(e, sendPair(censor, TEST, CONTROL, US_TO_CN_GROUP, from + i * 60_000));
    return { from, to: from + HOUR, test: e.test, control: e.control };
  });
}

const window = (w: number) => ({ from: T0 + w * HOUR, to: T0 + (w + 1) * HOUR });
const rule = (from: number, to: number): SimRule => ({
  id: 'lxb',
  all: ['六四', '刘晓波'],
  action: 'drop',
  active: { from: T0 + from * HOUR, to: T0 + to * HOUR },
});

describe('detectChanges', () => {
  it('finds onset and end within a window of the true ones, across outages', () => {
    const outages = [window(8), window(33), window(50)];
    for (const seed of [1, 2, 3, 4, 5]) {
      const r = detectChanges(series({ rules: [rule(20, 40)], outages }, seed));
      expect(r.segments.map((s) => s.verdict)).toEqual(['none', 'suppressed', 'none']);
      const [, on, off] = r.segments as [unknown, { firstWindow: number }, { firstWindow: number }];
      expect(Math.abs(on.firstWindow - 20)).toBeLessThanOrEqual(1);
      expect(Math.abs(off.firstWindow - 40)).toBeLessThanOrEqual(1);
      expect(r.outages).toEqual([8, 33, 50]);
      expect(r.current?.verdict).toBe('none');
    }
  });

  it('says since when a suppression still holds', () => {
    const r = detectChanges(series({ rules: [rule(30, 1000)] }, 9));
    expect(r.current?.verdict).toBe('suppressed');
    expect(Math.abs((r.current?.since ?? 0) - (T0 + 30 * HOUR))).toBeLessThanOrEqual(HOUR);
  });

  it('finds no change under background loss and outages alone', () => {
    for (const seed of [11, 12, 13, 14, 15, 16]) {
      const r = detectChanges(
        series({ outages: [window(5), window(6), window(40)], backgroundLoss: 0.05 }, seed),
      );
      expect(r.segments).toHaveLength(1);
      expect(r.segments[0]!.verdict).toBe('none');
    }
  });

  it('covers every window exactly once', () => {
    const windows = series({ rules: [rule(10, 25)], outages: [window(0), window(59)] }, 21);
    const r = detectChanges(windows);
    expect(r.segments[0]!.firstWindow).toBe(0);
    expect(r.segments[r.segments.length - 1]!.lastWindow).toBe(59);
    r.segments.slice(1).forEach((s, i) => {
      expect(s.firstWindow).toBe(r.segments[i]!.lastWindow + 1);
    });
  });
});

describe('evidenceWithoutOutages', () => {
  it('leaves out windows where both arms failed, not windows where only the control was lost', () => {
    const arm = (delivered: number, missing: number) => ({
      delivered,
      delayed: 0,
      missing,
      altered: 0,
      rejected: 0,
    });
    const outage = { from: 0, to: 1, test: arm(0, 2), control: arm(0, 2) };
    const lostControl = { from: 1, to: 2, test: arm(1, 0), control: arm(0, 1) };
    const suppressed = { from: 2, to: 3, test: arm(0, 2), control: arm(2, 0) };
    expect(isOutage(outage)).toBe(true);
    expect(isOutage(lostControl)).toBe(false);
    expect(isOutage(suppressed)).toBe(false);
    const e = evidenceWithoutOutages([outage, lostControl, suppressed]);
    expect(e.test).toEqual(arm(1, 2));
    expect(e.control).toEqual(arm(2, 1));
  });

  it('keeps the verdict none when outages are dropped symmetrically (30 seeded series)', () => {
    for (let seed = 40; seed < 70; seed++) {
      const windows = series({ outages: [window(3), window(4), window(30)] }, seed, 40, 1);
      expect(judge(evidenceWithoutOutages(windows)).verdict).not.toBe('suppressed');
    }
  });
});

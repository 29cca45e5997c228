import { describe, expect, it } from 'vitest';
import { ClockOffset, sampleFrom } from './clock.ts';

/** Simulates a check-in against a collector whose clock is `skew` ahead, with given one-way delays. */
function exchange(skew: number, up: number, serve: number, down: number, start = 1_000_000) {
  const t0 = start;
  const t1 = t0 + up + skew;
  const t2 = t1 + serve;
  const t3 = t0 + up + serve + down;
  return [t0, t1, t2, t3] as const;
}

describe('clock offset', () => {
  it('recovers a known skew exactly when the path is symmetric', () => {
    for (const skew of [0, 1500, -42_000, 3_600_000]) {
      const s = sampleFrom(...exchange(skew, 40, 5, 40));
      expect(s.offsetMs).toBe(skew);
      expect(s.rttMs).toBe(80);
    }
  });

  it('errs by at most half the round trip on an asymmetric path', () => {
    const s = sampleFrom(...exchange(2000, 300, 5, 20));
    expect(Math.abs(s.offsetMs - 2000)).toBeLessThanOrEqual(s.rttMs / 2);
    expect(s.offsetMs).toBe(2140);
  });

  it('keeps the estimate of the lowest-RTT recent sample', () => {
    const c = new ClockOffset(4);
    c.add(...exchange(5000, 400, 5, 10)); // slow, asymmetric: off by 195
    c.add(...exchange(5000, 12, 5, 10)); // fast: off by 1
    c.add(...exchange(5000, 900, 5, 30));
    expect(c.offsetMs()).toBe(5001);
    expect(c.estimate()?.rtt_ms).toBe(22);
    expect(c.toLocal(c.toCollector(123_456))).toBe(123_456);
  });

  it('follows a stepped clock once old samples leave the window', () => {
    const c = new ClockOffset(3);
    c.add(...exchange(1000, 5, 1, 5));
    for (let i = 0; i < 3; i++) c.add(...exchange(-7000, 50, 1, 50, 2_000_000 + i * 60_000));
    expect(c.offsetMs()).toBe(-7000);
  });

  it('starts from a saved estimate and is 0 without one', () => {
    expect(new ClockOffset().offsetMs()).toBe(0);
    const c = new ClockOffset(8, { offset_ms: 250, rtt_ms: 10, measured_at: new Date().toISOString() });
    expect(c.offsetMs()).toBe(250);
  });
});

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

  it('shifts the estimate by a step of the probe clock at once, in either direction', () => {
    for (const step of [420_000, -420_000]) {
      let wall = 5_000_000;
      let mono = 1000;
      const steps: number[] = [];
      const c = new ClockOffset(8, undefined, { wall: () => wall, mono: () => mono });
      c.onStep = (s) => steps.push(s);
      c.add(...exchange(2500, 10, 1, 10, wall));
      expect(c.offsetMs()).toBe(2500);
      const collectorAt = c.toCollector(wall);
      // 30 s pass, and the clock is stepped: the collector's time of "now" stays the same.
      wall += 30_000 + step;
      mono += 30_000;
      expect(c.offsetMs()).toBe(2500 - step);
      expect(c.toCollector(wall)).toBe(collectorAt + 30_000);
      expect(steps).toEqual([step]);
      expect(c.estimate()?.offset_ms).toBe(2500 - step);
    }
  });

  it('takes slewing and small jitter for no step', () => {
    let wall = 5_000_000;
    let mono = 0;
    const c = new ClockOffset(8, undefined, { wall: () => wall, mono: () => mono });
    c.add(...exchange(100, 10, 1, 10, wall));
    // 500 ppm over an hour (1.8 s), looked at once: within what slewing does.
    wall += 3_600_000 + 1800;
    mono += 3_600_000;
    expect(c.followSteps()).toBe(0);
    wall += 1000 + 400;
    mono += 1000;
    expect(c.followSteps()).toBe(0);
    expect(c.offsetMs()).toBe(100);
  });

  it('uses no sample from a check-in whose exchange straddles a step', () => {
    let wall = 5_000_000;
    let mono = 0;
    const c = new ClockOffset(8, undefined, { wall: () => wall, mono: () => mono });
    c.add(...exchange(100, 10, 1, 10, wall));
    const mark = c.mark();
    const t0 = wall;
    wall += 20 + 60_000; // stepped during the request
    mono += 20;
    expect(c.add(t0, t0 + 110, t0 + 111, wall, mark)?.offset_ms).toBe(100 - 60_000);
    expect(c.estimate()?.rtt_ms).toBe(20);
  });
});

import { describe, expect, it } from 'vitest';
import { Pacer, SlidingLimiter } from './limits.ts';

describe('rate limits and pacing', () => {
  it('allows up to the limit in a window, then waits until the oldest send leaves it', () => {
    const l = new SlidingLimiter([{ ms: 60_000, max: 3 }]);
    const t = 1_000_000;
    for (const dt of [0, 1000, 2000]) {
      expect(l.nextAllowedAt(t + dt)).toBe(t + dt);
      l.record(t + dt);
    }
    expect(l.nextAllowedAt(t + 3000)).toBe(t + 60_000);
    expect(l.nextAllowedAt(t + 61_000)).toBe(t + 61_000);
  });

  it('takes the strictest of several windows', () => {
    const l = new SlidingLimiter([
      { ms: 60_000, max: 10 },
      { ms: 3_600_000, max: 2 },
    ]);
    l.seed([0, 30_000]);
    expect(l.nextAllowedAt(40_000)).toBe(3_600_000);
  });

  it('pauses a random time between min and max after each send', () => {
    const p = new Pacer({ minMs: 1000, maxMs: 3000 }, () => 0.5);
    expect(p.nextAllowedAt(0)).toBe(0);
    p.sent(10_000);
    expect(p.nextAllowedAt(10_500)).toBe(12_000);
  });
});

import { describe, expect, it } from 'vitest';
import { Pacer, QuietHours, SendDurations, SlidingLimiter } from './limits.ts';

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

  it('holds sends in quiet hours until their local end, across midnight and in a window within a day', () => {
    const q = new QuietHours({ startMin: 23 * 60, endMin: 7 * 60, timeZone: 'Asia/Shanghai' });
    const at = (iso: string) => Date.parse(iso);
    // 00:30 in Shanghai (UTC+8) → 07:00 Shanghai = 23:00 UTC
    expect(q.nextAllowedAt(at('2026-06-01T16:30:20Z'))).toBe(at('2026-06-01T23:00:00Z'));
    // 23:10 Shanghai, before midnight
    expect(q.nextAllowedAt(at('2026-06-01T15:10:00Z'))).toBe(at('2026-06-01T23:00:00Z'));
    // 10:00 Shanghai: outside
    expect(q.nextAllowedAt(at('2026-06-01T02:00:00Z'))).toBe(at('2026-06-01T02:00:00Z'));
    const lunch = new QuietHours({ startMin: 12 * 60, endMin: 13 * 60, timeZone: 'UTC' });
    expect(lunch.nextAllowedAt(at('2026-06-01T12:30:00Z'))).toBe(at('2026-06-01T13:00:00Z'));
    expect(lunch.nextAllowedAt(at('2026-06-01T13:00:00Z'))).toBe(at('2026-06-01T13:00:00Z'));
    expect(new QuietHours(undefined).nextAllowedAt(5)).toBe(5);
  });
});

describe('send durations', () => {
  it('reports the 90th percentile of the last sends, forgetting older ones', () => {
    const d = new SendDurations(10);
    expect(d.p90()).toBeUndefined();
    for (let ms = 10; ms <= 100; ms += 10) d.record(ms);
    expect(d.p90()).toBe(90);
    d.record(Number.NaN); // ignored
    d.record(-5); // a clock step backwards: ignored
    expect(d.p90()).toBe(90);
    for (let i = 0; i < 10; i++) d.record(1000); // the slow ones replace the old
    expect(d.p90()).toBe(1000);
  });
});

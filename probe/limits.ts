/**
 * Account safety: per-account rate limits over sliding windows (minute, hour, day),
 * randomised pacing between two sends of one account, quiet hours (local night of the
 * account's time zone, when a person would not write), and a probe-wide daily budget.
 * All times are probe-clock epoch ms.
 */
import type { PacingConfig, QuietHoursConfig, RateLimitConfig } from './config.ts';

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

export class SlidingLimiter {
  private times: number[] = [];

  constructor(private readonly windows: { ms: number; max: number }[]) {}

  static forAccount(l: RateLimitConfig): SlidingLimiter {
    return new SlidingLimiter([
      { ms: MINUTE, max: l.perMinute },
      { ms: HOUR, max: l.perHour },
      { ms: DAY, max: l.perDay },
    ]);
  }

  static daily(max: number): SlidingLimiter {
    return new SlidingLimiter([{ ms: DAY, max }]);
  }

  /** Seeds past sends (e.g. from the ledger after a restart). */
  seed(times: number[]): void {
    this.times = [...this.times, ...times].sort((a, b) => a - b);
  }

  record(at: number): void {
    this.times.push(at);
    if (this.times.length > 1 && at < this.times[this.times.length - 2]!) this.times.sort((a, b) => a - b);
  }

  /** Per window (in the order given), how many more sends it allows at `now`. */
  remaining(now: number): number[] {
    return this.windows.map((w) => Math.max(0, w.max - this.times.filter((t) => t > now - w.ms).length));
  }

  /** The earliest time ≥ now at which one more send stays within every window. */
  nextAllowedAt(now: number): number {
    const longest = Math.max(0, ...this.windows.map((w) => w.ms));
    while (this.times.length > 0 && this.times[0]! <= now - longest) this.times.shift();
    let at = now;
    for (const w of this.windows) {
      const inWindow = this.times.filter((t) => t > at - w.ms);
      if (inWindow.length >= w.max) {
        // Wait until the oldest send that keeps us at the limit leaves the window.
        const oldest = inWindow[inWindow.length - w.max]!;
        at = Math.max(at, oldest + w.ms);
      }
    }
    return at;
  }
}

/** Randomised pause between two sends of one account. */
export class Pacer {
  private nextAt = 0;

  constructor(
    private readonly p: PacingConfig,
    private readonly random: () => number = Math.random,
  ) {}

  nextAllowedAt(now: number): number {
    return Math.max(now, this.nextAt);
  }

  /** Call after a send: the next may not start before a random pause. */
  sent(at: number): void {
    this.nextAt = at + this.p.minMs + this.random() * (this.p.maxMs - this.p.minMs);
  }
}

/**
 * How long an account's sends take, beyond the pause between them: the adapter's call and the
 * probe's own records (ledger, outbox). The collector plans an account's sends a pause *plus*
 * this apart (collector/capacity.ts), so a slow client (a browser, a busy machine) is not given
 * more canaries than it can send before their deadlines. Reported as the 90th percentile of
 * the last `keep` sends: a high value of what sends took lately, not the mean.
 */
export class SendDurations {
  private readonly recent: number[] = [];

  constructor(private readonly keep = 20) {}

  record(ms: number): void {
    if (!Number.isFinite(ms) || ms < 0) return;
    this.recent.push(ms);
    if (this.recent.length > this.keep) this.recent.shift();
  }

  /** The 90th percentile of the recent sends (nearest rank), or undefined before the first. */
  p90(): number | undefined {
    if (this.recent.length === 0) return undefined;
    const sorted = [...this.recent].sort((a, b) => a - b);
    return sorted[Math.ceil(0.9 * sorted.length) - 1];
  }
}

/** Minutes since local midnight of `at` in `timeZone` (IANA name). */
export function localMinutes(at: number, timeZone: string): number {
  const parts = new Intl.DateTimeFormat('en-GB', {
    timeZone,
    hour: '2-digit',
    minute: '2-digit',
    hourCycle: 'h23',
  }).formatToParts(new Date(at));
  const get = (t: string) => Number(parts.find((p) => p.type === t)?.value ?? 0);
  return get('hour') * 60 + get('minute');
}

/**
 * Quiet hours: no send from `start` to `end` local time (the window may wrap past midnight,
 * e.g. 23:00–07:00). `nextAllowedAt` is now outside the window, else the window's end.
 */
export class QuietHours {
  constructor(private readonly q: QuietHoursConfig | undefined) {}

  nextAllowedAt(now: number): number {
    if (!this.q) return now;
    const { startMin, endMin, timeZone } = this.q;
    const m = localMinutes(now, timeZone);
    const inside = startMin <= endMin ? m >= startMin && m < endMin : m >= startMin || m < endMin;
    if (!inside) return now;
    const left = (endMin - m + 24 * 60) % (24 * 60);
    // to the start of the minute the window ends (seconds within the current minute dropped)
    return now - (now % MINUTE) + left * MINUTE;
  }
}

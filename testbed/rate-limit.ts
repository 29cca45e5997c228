/** A token bucket per account: `max` requests per `windowMs`, refilled continuously. */
import type { Clock } from './clock.ts';

export interface RateLimitOptions {
  max: number;
  windowMs: number;
}

/** Generous: a probe sending canaries never meets it; a runaway loop does. */
export const DEFAULT_RATE_LIMIT: RateLimitOptions = { max: 1000, windowMs: 60_000 };

export class RateLimiter {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();

  constructor(
    private readonly options: RateLimitOptions,
    private readonly clock: Clock,
  ) {}

  /** Take one token for `key`; on refusal, how many ms until one is available. */
  take(key: string): { ok: true } | { ok: false; retryAfterMs: number } {
    const now = this.clock.now();
    const rate = this.options.max / this.options.windowMs;
    const b = this.buckets.get(key) ?? { tokens: this.options.max, at: now };
    b.tokens = Math.min(this.options.max, b.tokens + (now - b.at) * rate);
    b.at = now;
    this.buckets.set(key, b);
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return { ok: true };
    }
    return { ok: false, retryAfterMs: Math.ceil((1 - b.tokens) / rate) };
  }
}

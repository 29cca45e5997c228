/**
 * NTP-style clock offset between probe and collector from the four check-in
 * timestamps: t0 (probe sends), t1 (collector receives), t2 (collector answers),
 * t3 (probe receives).
 *
 *   offset = ((t1 - t0) + (t2 - t3)) / 2     collector clock − probe clock
 *   rtt    = (t3 - t0) - (t2 - t1)
 *
 * The error of one sample is at most rtt/2, so the estimate is the offset of the
 * lowest-RTT sample among the recent ones (as NTP's clock filter does); samples age
 * out so a stepped clock is followed within `window` check-ins.
 */
import type { ClockEstimate } from '../protocol/index.ts';

export interface ClockSample {
  offsetMs: number;
  rttMs: number;
  /** Probe clock when the answer arrived (t3). */
  at: number;
}

export function sampleFrom(t0: number, t1: number, t2: number, t3: number): ClockSample {
  return {
    offsetMs: (t1 - t0 + (t2 - t3)) / 2,
    rttMs: Math.max(0, t3 - t0 - (t2 - t1)),
    at: t3,
  };
}

export class ClockOffset {
  private samples: ClockSample[] = [];
  private best?: ClockSample;

  constructor(
    private readonly window = 8,
    initial?: ClockEstimate,
  ) {
    if (initial) {
      this.best = { offsetMs: initial.offset_ms, rttMs: initial.rtt_ms, at: Date.parse(initial.measured_at) };
    }
  }

  /** Adds a check-in's four timestamps; returns the new estimate. */
  add(t0: number, t1: number, t2: number, t3: number): ClockEstimate {
    const s = sampleFrom(t0, t1, t2, t3);
    if (!Number.isFinite(s.offsetMs) || t3 < t0) return this.estimate()!;
    this.samples.push(s);
    if (this.samples.length > this.window) this.samples.shift();
    this.best = this.samples.reduce((a, b) => (b.rttMs < a.rttMs ? b : a));
    return this.estimate()!;
  }

  /** Whether the estimate comes from a real check-in (not from seedRough or nothing). */
  get measured(): boolean {
    return this.samples.length > 0;
  }

  /**
   * A rough estimate from the collector's HTTP Date header (1 s resolution), used when
   * the probe's clock is so far off that signed requests are refused. Any real
   * check-in sample replaces it.
   */
  seedRough(serverDateMs: number, localMs: number): void {
    this.samples = [];
    this.best = { offsetMs: serverDateMs + 500 - localMs, rttMs: 60_000, at: localMs };
  }

  /** Collector clock − probe clock, ms (0 before the first check-in). */
  offsetMs(): number {
    return this.best ? Math.round(this.best.offsetMs) : 0;
  }

  /** Probe clock → collector clock. */
  toCollector(probeMs: number): number {
    return probeMs + this.offsetMs();
  }

  /** Collector clock → probe clock. */
  toLocal(collectorMs: number): number {
    return collectorMs - this.offsetMs();
  }

  estimate(): ClockEstimate | undefined {
    if (!this.best) return undefined;
    return {
      offset_ms: Math.round(this.best.offsetMs),
      rtt_ms: Math.round(this.best.rttMs),
      measured_at: new Date(this.best.at).toISOString(),
    };
  }
}

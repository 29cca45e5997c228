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
 *
 * A step of the probe's own clock (an operator's `date -s`, NTP stepping after a bad
 * start) is followed at once, without waiting for check-ins (docs/decisions/020): the
 * wall clock is compared with the monotonic clock (performance.now, which no step
 * moves) at every use and once a second; when wall − monotonic jumps by more than
 * STEP_MIN_MS (and more than NTP's slewing could explain), every sample is shifted by the
 * step and `onStep` is told (the agent checks in at once to measure afresh). A check-in
 * whose exchange straddles a step is not used as a sample.
 */
import { performance } from 'node:perf_hooks';
import type { ClockEstimate } from '../protocol/index.ts';

/** A change of wall − monotonic smaller than this is never taken for a step. */
export const STEP_MIN_MS = 1000;
/** Nor one smaller than this share of the monotonic time since the last look (slewing is ≤ 500 ppm). */
const SLEW_RATE = 0.001;

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

export interface ClockSources {
  /** The probe's wall clock (default Date.now). */
  wall?: () => number;
  /** A monotonic clock no step moves (default performance.now). */
  mono?: () => number;
}

export class ClockOffset {
  private samples: ClockSample[] = [];
  private best?: ClockSample;
  private readonly wall: () => number;
  private readonly mono: () => number;
  private lastWall: number;
  private lastMono: number;
  private readonly startWall: number;
  private readonly startMono: number;
  /** Steps seen so far (a check-in compares it before and after its exchange). */
  private steps = 0;
  /** Told about each step of the probe's clock, in ms (positive: the clock jumped ahead). */
  onStep?: (stepMs: number) => void;

  constructor(
    private readonly window = 8,
    initial?: ClockEstimate,
    sources: ClockSources = {},
  ) {
    this.wall = sources.wall ?? Date.now;
    this.mono = sources.mono ?? (() => performance.now());
    this.lastWall = this.startWall = this.wall();
    this.lastMono = this.startMono = this.mono();
    if (initial) {
      this.best = { offsetMs: initial.offset_ms, rttMs: initial.rtt_ms, at: Date.parse(initial.measured_at) };
    }
  }

  /**
   * Looks whether the probe's clock was stepped since the last look; if so, shifts every
   * sample by the step (the collector's clock did not move) and returns the step in ms.
   */
  followSteps(): number {
    const wall = this.wall();
    const mono = this.mono();
    const elapsed = mono - this.lastMono;
    const step = wall - this.lastWall - elapsed;
    this.lastWall = wall;
    this.lastMono = mono;
    if (Math.abs(step) < Math.max(STEP_MIN_MS, elapsed * SLEW_RATE)) return 0;
    const shift = (s: ClockSample): ClockSample => ({ ...s, offsetMs: s.offsetMs - step, at: s.at + step });
    this.samples = this.samples.map(shift);
    if (this.best) this.best = shift(this.best);
    this.steps += 1;
    this.onStep?.(step);
    return step;
  }

  /**
   * Epoch ms that no step of the wall clock moves: the wall clock when this was made, plus
   * monotonic time since. For pauses and rate windows (pacing must not stall for the
   * length of a backward step, nor let a forward step empty a window).
   */
  steady(): number {
    return this.startWall + (this.mono() - this.startMono);
  }

  /** A mark to pass to add(): a check-in exchange that straddles a step is no sample. */
  mark(): number {
    this.followSteps();
    return this.steps;
  }

  /** Adds a check-in's four timestamps; returns the new estimate. */
  add(t0: number, t1: number, t2: number, t3: number, mark?: number): ClockEstimate | undefined {
    this.followSteps();
    if (mark !== undefined && mark !== this.steps) return this.estimate();
    const s = sampleFrom(t0, t1, t2, t3);
    if (!Number.isFinite(s.offsetMs) || t3 < t0) return this.estimate();
    this.samples.push(s);
    if (this.samples.length > this.window) this.samples.shift();
    this.best = this.samples.reduce((a, b) => (b.rttMs < a.rttMs ? b : a));
    return this.estimate();
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
    this.followSteps();
    this.samples = [];
    this.best = { offsetMs: serverDateMs + 500 - localMs, rttMs: 60_000, at: localMs };
  }

  /** Collector clock − probe clock, ms (0 before the first check-in). */
  offsetMs(): number {
    this.followSteps();
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
    this.followSteps();
    if (!this.best) return undefined;
    return {
      offset_ms: Math.round(this.best.offsetMs),
      rtt_ms: Math.round(this.best.rttMs),
      measured_at: new Date(this.best.at).toISOString(),
    };
  }
}

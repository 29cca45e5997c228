/**
 * Time for the testbed, injectable so tests can step through delays, active windows
 * and outages without waiting. `systemClock` is the real one; `ManualClock` only moves
 * when told to.
 */
export type TimerHandle = { readonly id: number };

export interface Clock {
  /** Milliseconds since the Unix epoch. */
  now(): number;
  setTimeout(fn: () => void, ms: number): TimerHandle;
  clearTimeout(handle: TimerHandle): void;
}

let nextTimerId = 1;

export const systemClock: Clock = (() => {
  const timers = new Map<number, NodeJS.Timeout>();
  return {
    now: () => Date.now(),
    setTimeout(fn, ms) {
      const handle = { id: nextTimerId++ };
      const t = setTimeout(
        () => {
          timers.delete(handle.id);
          fn();
        },
        Math.max(0, ms),
      );
      timers.set(handle.id, t);
      return handle;
    },
    clearTimeout(handle) {
      const t = timers.get(handle.id);
      if (t) clearTimeout(t);
      timers.delete(handle.id);
    },
  };
})();

interface ManualTimer {
  id: number;
  due: number;
  seq: number;
  fn: () => void;
}

/** A clock that stands still until `advance` or `set` moves it; due timers then fire in order. */
export class ManualClock implements Clock {
  private current: number;
  private seq = 0;
  private readonly timers = new Map<number, ManualTimer>();

  constructor(start: number | Date | string = Date.UTC(2026, 0, 1)) {
    this.current = typeof start === 'number' ? start : new Date(start).getTime();
    if (!Number.isFinite(this.current)) throw new RangeError(`ManualClock: bad start time ${String(start)}`);
  }

  now(): number {
    return this.current;
  }

  setTimeout(fn: () => void, ms: number): TimerHandle {
    const id = nextTimerId++;
    this.timers.set(id, { id, due: this.current + Math.max(0, ms), seq: this.seq++, fn });
    return { id };
  }

  clearTimeout(handle: TimerHandle): void {
    this.timers.delete(handle.id);
  }

  /** Number of timers not yet fired. */
  get pending(): number {
    return this.timers.size;
  }

  /** Move forward by `ms`, firing every timer that falls due on the way, in due order. */
  advance(ms: number): void {
    this.set(this.current + ms);
  }

  /** Move to an absolute time (never backwards), firing due timers in order. */
  set(to: number | Date | string): void {
    const target = typeof to === 'number' ? to : new Date(to).getTime();
    if (!(target >= this.current)) throw new RangeError('ManualClock cannot go backwards');
    for (;;) {
      let next: ManualTimer | undefined;
      for (const t of this.timers.values()) {
        if (t.due <= target && (!next || t.due < next.due || (t.due === next.due && t.seq < next.seq)))
          next = t;
      }
      if (!next) break;
      this.timers.delete(next.id);
      this.current = Math.max(this.current, next.due);
      next.fn();
    }
    this.current = target;
  }
}

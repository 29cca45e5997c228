/**
 * A latency quantile read from the rollups' histogram (collector/db/rollups.ts) against the exact
 * one of the raw query: equal within the histogram's relative error.
 */
import { expect } from 'vitest';
import { LATENCY_RELATIVE_ERROR } from '../db/rollups.ts';

export function expectWithinError(approx: number | null, exact: number | null): void {
  if (exact === null) expect(approx).toBeNull();
  // The bound is reached (a value on a bucket's lower edge, e.g. 1 ms or 1024 ms): allow float rounding.
  else
    expect(Math.abs(approx! - exact)).toBeLessThanOrEqual(LATENCY_RELATIVE_ERROR * exact * (1 + 1e-9) + 1e-9);
}

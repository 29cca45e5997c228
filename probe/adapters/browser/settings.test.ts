import { describe, expect, it } from 'vitest';
import { DEFAULT_PACING, readSettings } from './settings.ts';

describe('browser adapter settings', () => {
  it('uses human-like pacing unless told otherwise', () => {
    const s = readSettings({ recipe: 'testbed' });
    expect(s.pacing).toEqual(DEFAULT_PACING);
    expect(s.pacing.keyDelayMs[0]).toBeGreaterThan(0);
    expect(s.headless).toBe(true);
  });

  it('refuses a missing recipe and an inverted delay range with the field name', () => {
    expect(() => readSettings({})).toThrow(/recipe is required/);
    expect(() => readSettings({ recipe: 'testbed', pacing: { keyDelayMs: [50, 10] } })).toThrow(
      /pacing.keyDelayMs must be \[min, max\]/,
    );
    expect(() => readSettings({ recipe: 'testbed', sendTimeoutMs: -1 })).toThrow(/sendTimeoutMs/);
  });
});

import { describe, expect, it } from 'vitest';
import { draw, Pacer } from './pacing.ts';

describe('pacing', () => {
  it('draws delays inside the configured range', () => {
    expect(draw([100, 200], () => 0)).toBe(100);
    expect(draw([100, 200], () => 0.999999)).toBe(200);
    expect(draw([100, 200], () => 0.5)).toBe(150);
  });

  it('waits out the least interval between two sends of one account', async () => {
    const pacer = new Pacer({ actionDelayMs: [0, 0], keyDelayMs: [0, 0], minSendIntervalMs: 150 });
    const t0 = Date.now();
    await pacer.beforeSend();
    await pacer.beforeSend();
    expect(Date.now() - t0).toBeGreaterThanOrEqual(140);
  });
});

import { describe, expect, it } from 'vitest';
import { evidenceWithoutOutages } from './changepoint.ts';
import { type PairedRow, pairedEvidence } from './paired-evidence.ts';

const row = (
  windowMs: number,
  test: string,
  control: string,
  extra: Partial<PairedRow> & { id?: string } = {},
): PairedRow & { id: string } => ({
  id: `${windowMs}:${test}:${control}`,
  windowMs,
  sendMs: windowMs,
  testStatus: test,
  testLatencyMs: test === 'missing' ? null : 100,
  controlStatus: control,
  controlLatencyMs: control === 'missing' ? null : 50,
  ...extra,
});

describe('pairedEvidence', () => {
  it('counts pairs by window in time order and leaves outage windows out of the evidence', async () => {
    const rows = [
      row(2000, 'missing', 'delivered', { sendMs: 2500 }),
      row(2000, 'delivered', 'delivered', { sendMs: 2100 }),
      // window 1000: both arms mostly failed, an outage
      row(1000, 'missing', 'missing'),
      row(1000, 'missing', 'missing'),
      row(3000, 'delayed', 'delivered', { testLatencyMs: 9000 }),
    ];
    const { windows, evidence, counted } = await pairedEvidence(rows);
    expect(windows.map((w) => [w.from, w.to])).toEqual([
      [1000, 1000],
      [2000, 2500],
      [3000, 3000],
    ]);
    expect(windows[0]?.test.missing).toBe(2);
    expect(evidence.test).toEqual({ delivered: 1, delayed: 1, missing: 1, altered: 0, rejected: 0 });
    expect(evidence.control).toEqual({ delivered: 3, delayed: 0, missing: 0, altered: 0, rejected: 0 });
    expect({ test: evidence.test, control: evidence.control }).toEqual(evidenceWithoutOutages(windows));
    expect(counted.map((r) => r.id)).toEqual([
      '2000:missing:delivered',
      '2000:delivered:delivered',
      '3000:delayed:delivered',
    ]);
    // latencies of what arrived, in window order
    expect(evidence.latencyTestMs).toEqual([100, 9000]);
    expect(evidence.latencyControlMs).toEqual([50, 50, 50]);
  });

  it('counts a pair whole or not at all: an arm not final leaves out both', async () => {
    const rows = [row(1000, 'delivered', 'pending'), row(1000, 'failed', 'delivered'), row(1000, 'x', 'y')];
    const { windows, evidence, counted } = await pairedEvidence(rows);
    expect(windows).toHaveLength(1);
    expect(counted).toEqual([]);
    expect(evidence.test).toEqual({ delivered: 0, delayed: 0, missing: 0, altered: 0, rejected: 0 });
    expect(evidence.control).toEqual({ delivered: 0, delayed: 0, missing: 0, altered: 0, rejected: 0 });
  });

  it('takes no latency from an arm that did not arrive, even when one is stored', async () => {
    const { evidence } = await pairedEvidence([
      row(1000, 'rejected', 'delivered', { testLatencyMs: 7 }),
      row(1000, 'altered', 'delivered', { testLatencyMs: 8 }),
    ]);
    expect(evidence.latencyTestMs).toEqual([8]);
  });
});

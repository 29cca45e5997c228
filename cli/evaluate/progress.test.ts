import { describe, expect, it } from 'vitest';
import { progressLine, timeLeft } from './progress.ts';
import type { ReportFinding, ReportState } from './report.ts';

const finding = (terms: string[], recipient: string, o: Partial<ReportFinding>): ReportFinding => ({
  terms,
  verdict: 'inconclusive',
  scope: { conversation: 'group', sender_region: 'US', recipient_region: recipient },
  rate_test: 0,
  rate_control: 0,
  ci: [0, 1],
  p: 1,
  n_test: 0,
  n_control: 0,
  settled: false,
  ...o,
});

const state = (findings: ReportFinding[], open = findings.filter((f) => !f.settled).length): ReportState => ({
  report: { version: 1, messages_sent: 310, findings },
  settled: open === 0,
  open,
  refuted: [],
});

describe('the evaluate progress line', () => {
  const findings = [
    finding(['六四'], 'CN', { verdict: 'suppressed', settled: true, n_test: 6, n_control: 6 }),
    finding(['图书馆'], 'CN', { verdict: 'none', settled: true, n_test: 3, n_control: 3 }),
    finding(['图书馆'], 'US', { verdict: 'none', settled: true, n_test: 3, n_control: 3 }),
    finding(['709'], 'CN', { verdict: 'inconclusive', n_test: 12, n_control: 13 }),
    finding(['律师'], 'CN', { verdict: 'inconclusive', n_test: 2, n_control: 3 }),
  ];

  it('tells messages, verdicts per kind, the slowest scope and what it needs, and the time left', () => {
    const samples = [
      { atMs: 0, settled: 1 },
      { atMs: 30_000, settled: 2 },
      { atMs: 60_000, settled: 3 },
    ];
    expect(progressLine(state(findings), 61_000, samples, new Map())).toBe(
      'evaluate: 61 s, 310 messages sent; 3/5 verdicts settled (none 2, suppressed 1); ' +
        'slowest: 律师 (group US→CN), 2 pairs, needs 2 more before its first look; about 60 s left',
    );
  });

  it('names a scope whose screen is still running, and says when it cannot estimate', () => {
    const screens = new Map([['group|US|CN', 7]]);
    expect(progressLine(state(findings), 5_000, [{ atMs: 5_000, settled: 3 }], screens)).toBe(
      'evaluate: 5 s, 310 messages sent; 3/5 verdicts settled (none 2, suppressed 1); ' +
        'slowest: 律师 (group US→CN), waiting for its screen (7 packs so far); ' +
        'time left: unknown (nothing settled in the last minute)',
    );
  });

  it('gives the time left from the last minute only', () => {
    const samples = [
      { atMs: 0, settled: 0 },
      { atMs: 100_000, settled: 50 },
      { atMs: 160_000, settled: 60 },
    ];
    // 10 settled in the last 60 s, 30 open: about 3 minutes
    expect(timeLeft(samples, 30)).toBe('about 3 min left');
    expect(timeLeft(samples, 0)).toBe('done');
  });
});

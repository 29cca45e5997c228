import { describe, expect, it } from 'vitest';
import type { ReportedFinding } from '../../collector/db/evaluation.ts';
import type { FindingScope } from '../../collector/db/findings.ts';
import { findingKey, termSetKey } from '../../collector/keys.ts';
import { assembleReport } from './report.ts';

const scope = (sender: string, recipient: string): FindingScope => ({
  platform: 'testbed',
  conversation_kind: 'group',
  sender_region: sender,
  recipient_region: recipient,
});
const SCOPES = [scope('US', 'CN'), scope('CN', 'US'), scope('US', 'AU')];

const stored = (terms: string[], s: FindingScope, o: Partial<ReportedFinding>): ReportedFinding => ({
  key: findingKey(terms, s),
  verdict: 'none',
  testTrials: 40,
  controlTrials: 40,
  testRate: 1,
  controlRate: 1,
  pValue: 1,
  qValue: 1,
  ciLow: 0,
  ciHigh: 0.05,
  settled: true,
  minimal: true,
  ...o,
});

// a partial drop (a rule on 甲 that fires on half the messages towards CN) made isolation keep
// 乙 and 丙 beside it; the rounds judged the combination in every scope
const PARTIAL = ['甲'];
const COMBO = ['甲', '乙', '丙'];
const LISTED = [PARTIAL, ['乙', '丙']];
const judged = (comboTowardsCn: Partial<ReportedFinding>, others: Partial<ReportedFinding> = {}) => [
  stored(PARTIAL, SCOPES[0] as FindingScope, { verdict: 'suppressed' }),
  stored(PARTIAL, SCOPES[1] as FindingScope, {}),
  stored(PARTIAL, SCOPES[2] as FindingScope, {}),
  stored(['乙', '丙'], SCOPES[0] as FindingScope, {}),
  stored(['乙', '丙'], SCOPES[1] as FindingScope, {}),
  stored(['乙', '丙'], SCOPES[2] as FindingScope, {}),
  stored(COMBO, SCOPES[0] as FindingScope, comboTowardsCn),
  stored(COMBO, SCOPES[1] as FindingScope, others),
  stored(COMBO, SCOPES[2] as FindingScope, others),
];
const setsIn = (findings: { terms: string[] }[]) => [...new Set(findings.map((f) => termSetKey(f.terms)))];

describe('the evaluate report', () => {
  it('leaves out a derived combination the rounds refuted: settled everywhere, suppressed only where a listed subset explains it', () => {
    const r = assembleReport(SCOPES, LISTED, [COMBO], judged({ verdict: 'suppressed', minimal: false }));
    expect(r.refuted).toEqual([termSetKey(COMBO)]);
    expect(setsIn(r.findings).sort()).toEqual([termSetKey(PARTIAL), termSetKey(['乙', '丙'])].sort());
    expect(r.findings).toHaveLength(6);
    expect(r.open).toBe(0);
  });

  it('keeps it while any of its verdicts is open, and counts those', () => {
    const r = assembleReport(
      SCOPES,
      LISTED,
      [COMBO],
      judged({ verdict: 'suppressed', minimal: false }, { settled: false, verdict: 'inconclusive' }),
    );
    expect(r.refuted).toEqual([]);
    // towards CN it is explained by 甲 (left out there); the two open scopes are shown and counted
    expect(r.findings.filter((f) => termSetKey(f.terms) === termSetKey(COMBO))).toHaveLength(2);
    expect(r.open).toBe(2);
  });

  it('keeps a derived combination that is a minimal finding somewhere, and one with no finding in a scope yet', () => {
    const minimal = assembleReport(SCOPES, LISTED, [COMBO], judged({ verdict: 'suppressed', minimal: true }));
    expect(minimal.refuted).toEqual([]);
    expect(minimal.findings.filter((f) => termSetKey(f.terms) === termSetKey(COMBO))).toHaveLength(3);
    const unjudged = assembleReport(
      SCOPES,
      LISTED,
      [COMBO],
      judged({ verdict: 'suppressed', minimal: false }).slice(0, -1),
    );
    expect(unjudged.refuted).toEqual([]);
    expect(unjudged.open).toBe(1);
  });

  it('never leaves out a listed term set, even one that is `none` everywhere, nor a derived set that is listed', () => {
    const r = assembleReport(SCOPES, [...LISTED, COMBO], [COMBO], judged({ verdict: 'none' }));
    expect(r.refuted).toEqual([]);
    expect(setsIn(r.findings)).toContain(termSetKey(COMBO));
    expect(r.findings).toHaveLength(9);
  });
});

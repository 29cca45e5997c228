import { describe, expect, it } from 'vitest';
import {
  CITIZENLAB_DIR,
  CITIZENLAB_FILES,
  citizenLabPresent,
  loadCitizenLab,
  readCitizenLab,
  requireAll,
  skipNotice,
  sourceMdRows,
} from './testData.ts';

describe('Citizen Lab data availability', () => {
  it.runIf(requireAll)('is present when SILENTDROP_REQUIRE_ALL=1', () => {
    expect(citizenLabPresent, `missing ${CITIZENLAB_DIR}`).toBe(true);
  });
});

describe.skipIf(!citizenLabPresent)(`importCitizenLabCsv on the real lists${skipNotice}`, () => {
  it.each(CITIZENLAB_FILES)('imports every row of %s that SOURCE.md counts, without errors', (file) => {
    const expected = sourceMdRows().get(file);
    expect(expected).toBeGreaterThan(0);
    const r = loadCitizenLab(file);
    expect(r.errors).toEqual([]);
    expect(r.termSets).toHaveLength(expected as number);
  });

  it('tells the four formats apart by their headers', () => {
    expect(CITIZENLAB_FILES.map((f) => loadCitizenLab(f).format)).toEqual([
      'one-app-two-systems',
      '709crackdown',
      'liu-xiaobo',
      'coronavirus',
    ]);
  });

  it('splits 709 combinations into exactly the number of components the file states', () => {
    const { termSets } = loadCitizenLab('wechat-709crackdown.csv');
    for (const s of termSets) expect(s.terms.length, s.meta.line).toBe(Number(s.meta.components));
    const combos = termSets.filter((s) => s.terms.length > 1).length;
    expect(combos).toBe(862 - 113); // 113 single-term rows; 749 combinations, as the 2017 report says
    expect(termSets.find((s) => s.meta.line === '15')?.terms).toEqual(['退党', '大潮']);
  });

  it('splits One App, Two Systems combos on spaces and keeps spaces inside phrases', () => {
    const { termSets } = loadCitizenLab('wechat-one-app-two-systems.csv');
    const combos = termSets.filter((s) => s.meta.keyword_type === 'combo');
    expect(combos).toHaveLength(80);
    expect(combos.find((s) => s.meta.translation === 'Evil Party Nine Commentaries')?.terms).toEqual([
      '邪党',
      '九评',
    ]);
    const phrase = termSets.find((s) => s.meta.translation === 'Jiang Mianheng House Arrest');
    expect(phrase?.meta.keyword_type).toBe('phrase');
    expect(phrase?.terms).toEqual(['江绵恒 软禁']);
    // a quoted Note with commas and doubled quotes stays one field
    expect(termSets[1]?.meta.note).toContain('"capitalist government"');
  });

  it('reads the Liu Xiaobo file with its quoted keyword and per-chat columns', () => {
    const { termSets } = loadCitizenLab('wechat-liu-xiaobo.csv');
    expect(termSets[0]?.terms).toEqual(['六四', '刘晓波']);
    expect(termSets[0]?.meta).toMatchObject({ group_chat: 'Blocked', direct_chat: 'Not blocked' });
    expect(termSets.find((s) => s.terms[0] === '刘晓波病情')?.terms).toEqual([
      '刘晓波病情',
      '鲍彤被公安登门禁言',
    ]);
  });

  it('splits coronavirus combinations and counts all components', () => {
    const { termSets } = loadCitizenLab('wechat-coronavirus.csv');
    expect(termSets[1]?.terms).toEqual(['华春莹', '华盛顿', '装上去', '中方']);
    expect(termSets[1]?.meta.detected_on).toBe('2020-02-14 8:49:42');
    const total = termSets.reduce((n, s) => n + s.terms.length, 0);
    // independent count: the number of `+` in the keyword column plus one per row
    const raw = readCitizenLab('wechat-coronavirus.csv')
      .split(/\r?\n/)
      .slice(1)
      .filter((l) => l !== '')
      .map((l) => (l.split(',')[0] ?? '').split('+').length)
      .reduce((a, b) => a + b, 0);
    expect(total).toBe(raw);
  });

  it('handles CRLF line endings (no \\r left in any term or value)', () => {
    for (const f of CITIZENLAB_FILES) {
      for (const s of loadCitizenLab(f).termSets) {
        expect(s.terms.join('')).not.toMatch(/[\r\n]/);
        expect(Object.values(s.meta).join('')).not.toMatch(/[\r\n]/);
      }
    }
  });
});

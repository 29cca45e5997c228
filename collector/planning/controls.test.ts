import { describe, expect, it } from 'vitest';
import { ControlError, controlUnsupported, makeControlTerms } from './controls.ts';
import { findTriggers, triggerIndex } from './matching.ts';
import { createRng } from './rng.ts';
import { detectScript, scriptRuns } from './scripts.ts';
import { allCitizenLabSets, citizenLabPresent, skipNotice } from './testData.ts';

const codePoints = (s: string) => [...s].length;
const shape = (s: string) => scriptRuns(s).map((r) => `${r.family}:${r.length}`);

function expectMatched(term: string, control: string) {
  expect(codePoints(control), `${term} → ${control}`).toBe(codePoints(term));
  expect(detectScript(control), `${term} → ${control}`).toBe(detectScript(term));
  expect(shape(control), `${term} → ${control}`).toEqual(shape(term));
  expect(control).not.toBe(term);
}

describe('makeControlTerms on hand-picked terms', () => {
  it.each([
    ['刘晓波'],
    ['劉曉波'],
    ['六四'],
    ['Jinping'],
    ['XI'],
    ['法lun功'],
    ['89民运 邓小平'],
    ['बोधगया'],
  ])('matches %s in length, script and shape', (term) => {
    const [control] = makeControlTerms([term], createRng(`t-${term}`));
    expectMatched(term, control as string);
  });

  it('keeps capitalisation of Latin runs', () => {
    const [a, b] = makeControlTerms(['Jinping', 'NATO'], createRng(1));
    expect(a?.[0]).toMatch(/[A-Z]/);
    expect(b).toBe(b?.toUpperCase());
  });

  it('never returns a control that contains an avoided term', () => {
    const avoid = ['茶', '水', '雨', '雪', '米', '花', '风'];
    const rng = createRng('avoid');
    for (let i = 0; i < 50; i++) {
      const controls = makeControlTerms(['六四天安门'], rng, { avoid });
      expect(findTriggers(controls.join(' '), triggerIndex(avoid))).toEqual([]);
    }
  });

  it('gives distinct controls to the terms of one set', () => {
    const controls = makeControlTerms(['党', '國', '死', '习'], createRng(3));
    expect(new Set(controls).size).toBe(4);
  });

  it('is deterministic for a seed', () => {
    const set = ['六四', '刘晓波', 'Jinping'];
    expect(makeControlTerms(set, createRng(9))).toEqual(makeControlTerms(set, createRng(9)));
    expect(makeControlTerms(set, createRng(9))).not.toEqual(makeControlTerms(set, createRng(10)));
  });

  it('refuses scripts it has no vocabulary for', () => {
    expect(controlUnsupported('Путин')).toMatch(/no benign vocabulary/);
    expect(() => makeControlTerms(['Путин'], createRng(1))).toThrow(ControlError);
  });
});

describe.skipIf(!citizenLabPresent)(`makeControlTerms on every Citizen Lab term set${skipNotice}`, () => {
  const sets = citizenLabPresent ? allCitizenLabSets() : [];
  const allTerms = sets.flatMap((s) => s.terms);
  const index = triggerIndex(allTerms);

  it.each([
    ['simplified Chinese', 'han-simplified'],
    ['traditional Chinese', 'han-traditional'],
    ['English', 'latin'],
    ['Tibetan', 'tibetan'],
    ['Uyghur', 'arabic'],
    ['Hindi', 'devanagari'],
  ])('matches length and script for %s terms and contains no listed term', (language, script) => {
    const rows = sets.filter((s) => s.meta.language === language);
    expect(rows.length).toBeGreaterThan(0);
    const rng = createRng(language);
    let inScript = 0;
    for (const row of rows) {
      const controls = makeControlTerms(row.terms, rng, { avoid: index });
      row.terms.forEach((term, i) => {
        expectMatched(term, controls[i] as string);
      });
      expect(findTriggers(controls.join(' '), index)).toEqual([]);
      inScript += row.terms.filter((t) => detectScript(t) === script).length;
    }
    expect(inScript).toBeGreaterThan(0);
  });

  it("builds a control for every one of the lists' term sets", () => {
    const rng = createRng('all');
    for (const row of sets)
      expect(makeControlTerms(row.terms, rng, { avoid: index })).toHaveLength(row.terms.length);
  });
});

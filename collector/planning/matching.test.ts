import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { findTriggers, hasTerm, matchKey, triggerIndex } from './matching.ts';

/** The rule itself, one key at a time: what the index must find. */
function scanned(text: string, terms: readonly string[]): string[] {
  const hay = matchKey(text);
  const seen = new Set<string>();
  const out: string[] = [];
  for (const term of terms) {
    const key = matchKey(term).trim();
    if (key === '' || seen.has(key)) continue;
    seen.add(key);
    if (hay.includes(key)) out.push(term);
  }
  return out;
}

// Few characters, so that terms occur in texts: Latin in both cases, fullwidth forms (NFKC),
// Han with spaces between (removed), an astral character (two UTF-16 units) and a lone half.
const CHARS = ['a', 'B', 'b', 'ｂ', '1', ' ', '六', '四', '天', '安', '门', '😀', '\ud83d'];
const word = (max: number) =>
  fc.array(fc.constantFrom(...CHARS), { minLength: 1, maxLength: max }).map((cs) => cs.join(''));

describe('findTriggers', () => {
  it('finds exactly the terms a scan per key finds, in list order, with short and long lists', () => {
    fc.assert(
      fc.property(fc.array(word(4), { maxLength: 60 }), word(30), (terms, text) => {
        expect(findTriggers(text, triggerIndex(terms))).toEqual(scanned(text, terms));
      }),
      { numRuns: 2000, seed: 12 },
    );
  });

  it('finds a term of a long list wherever it stands in the text: start, middle or end', () => {
    fc.assert(
      fc.property(
        fc.array(word(4), { minLength: 17, maxLength: 60 }),
        fc.nat(),
        fc.string({ maxLength: 6 }),
        fc.string({ maxLength: 6 }),
        (terms, which, before, after) => {
          const text = `${before}${terms[which % terms.length]}${after}`;
          const found = findTriggers(text, triggerIndex(terms));
          expect(found).toEqual(scanned(text, terms));
        },
      ),
      { numRuns: 2000, seed: 12 },
    );
  });

  it('finds a term of a long list by its first, last and only occurrence', () => {
    const terms = Array.from({ length: 500 }, (_, i) => `term${i}x`);
    const index = triggerIndex([...terms, '六四', 'Tiananmen']);
    expect(findTriggers('term499x at the start', index)).toEqual(['term499x']);
    expect(findTriggers('at the end: 六 四', index)).toEqual(['六四']);
    expect(findTriggers('ＴＩＡＮＡＮＭＥＮ', index)).toEqual(['Tiananmen']);
    expect(findTriggers('term12 term1x', index)).toEqual(['term1x']);
    expect(findTriggers('nothing here', index)).toEqual([]);
  });

  it('knows its own terms by their match keys, not by their spelling', () => {
    const index = triggerIndex(['Tiananmen', '六四', ' padded ']);
    expect(['ＴＩＡＮＡＮＭＥＮ', '六 四', 'padded', 'PADDED '].map((t) => hasTerm(index, t))).toEqual([
      true,
      true,
      true,
      true,
    ]);
    expect(['Tiananmen Square', '六', '', ' '].map((t) => hasTerm(index, t))).toEqual([
      false,
      false,
      false,
      false,
    ]);
  });
});

import { describe, expect, it } from 'vitest';
import { parseCsv } from './csv.ts';
import {
  importCitizenLabCsv,
  MAX_LINE_CODE_POINTS,
  normalizeTerm,
  parseTermFile,
  termSetKey,
} from './terms.ts';

describe('parseTermFile', () => {
  it('splits combinations on " + " and on a bare "+"', () => {
    const { termSets, errors } = parseTermFile('六四 + 刘晓波\n709+律师\n');
    expect(errors).toEqual([]);
    expect(termSets).toEqual([
      ['六四', '刘晓波'],
      ['709', '律师'],
    ]);
  });

  it('skips comments and blank lines but keeps # inside a term', () => {
    const { termSets } = parseTermFile('# header\n\n   \n  # indented comment\n#MeToo + 维权\r\n');
    expect(termSets).toEqual([]);
    const kept = parseTermFile('维权 + tag#1\n');
    expect(kept.termSets).toEqual([['维权', 'tag#1']]);
  });

  it('NFC-normalises terms and keeps them otherwise verbatim', () => {
    const decomposed = 'Cafe\u0301 Latte';
    const { termSets } = parseTermFile(`${decomposed} + wisalstudio com\n`);
    expect(termSets).toEqual([['Caf\u00e9 Latte', 'wisalstudio com']]);
  });

  it('removes duplicate terms within a set', () => {
    expect(parseTermFile('六四 + 六四 + 坦克\n').termSets).toEqual([['六四', '坦克']]);
  });

  it('reports empty terms and overlong lines by line number', () => {
    const long = 'x'.repeat(MAX_LINE_CODE_POINTS + 1);
    const { termSets, errors } = parseTermFile(`ok\n六四 + \n+ 刘晓波\n${long}\na ++ b\n`);
    expect(termSets).toEqual([['ok']]);
    expect(errors.map((e) => e.line)).toEqual([2, 3, 4, 5]);
  });

  it('reports a set that repeats an earlier line in another order and keeps it once', () => {
    const { termSets, errors } = parseTermFile('a + b\nb + a\n');
    expect(termSets).toEqual([['a', 'b']]);
    expect(errors).toEqual([{ line: 2, message: 'same term set as line 1; kept once' }]);
  });

  it('strips a byte-order mark', () => {
    expect(parseTermFile('\uFEFF六四\n').termSets).toEqual([['六四']]);
  });
});

describe('termSetKey', () => {
  it('is independent of order, duplicates and normalisation form', () => {
    expect(termSetKey(['刘晓波', '六四'])).toBe(termSetKey(['六四', '刘晓波', ' 六四 ']));
    expect(termSetKey(['Cafe\u0301'])).toBe(termSetKey(['Caf\u00e9']));
    expect(termSetKey(['a', 'b'])).not.toBe(termSetKey(['a', 'c']));
  });

  it('normalizeTerm trims and composes', () => {
    expect(normalizeTerm('  e\u0301 ')).toBe('\u00e9');
  });
});

describe('parseCsv', () => {
  it('reads quoted fields with commas, doubled quotes and line breaks, CRLF records', () => {
    const { records, errors } = parseCsv('a,b\r\n"x, y","say ""hi""",\r\n"multi\r\nline",z\r\n');
    expect(errors).toEqual([]);
    expect(records).toEqual([
      { line: 1, fields: ['a', 'b'] },
      { line: 2, fields: ['x, y', 'say "hi"', ''] },
      { line: 3, fields: ['multi\r\nline', 'z'] },
    ]);
  });

  it('reads a last record without a line break and reports an unterminated quote', () => {
    expect(parseCsv('a\nb').records.map((r) => r.fields)).toEqual([['a'], ['b']]);
    expect(parseCsv('a\n"open').errors).toEqual([{ line: 2, message: 'unterminated quoted field' }]);
  });
});

describe('importCitizenLabCsv on small inputs', () => {
  it('rejects an unknown header', () => {
    const r = importCitizenLabCsv('foo,bar\n1,2\n');
    expect(r.termSets).toEqual([]);
    expect(r.errors[0]?.message).toMatch(/not a known/);
  });

  it('reports a component count that disagrees with the keyword', () => {
    const csv = 'Date Tested,Keyword,Translation,# of Components,Language\r\n07/2016,a+b,x,3,English\r\n';
    const r = importCitizenLabCsv(csv);
    expect(r.errors).toEqual([{ line: 2, message: 'row says 3 components, keyword has 2' }]);
  });
});

import { describe, expect, it } from 'vitest';
import { toCsv } from './src/csv.ts';

describe('dashboard CSV downloads', () => {
  it('quotes per RFC 4180 and defuses text a spreadsheet would run as a formula', () => {
    expect(
      toCsv(
        ['term', 'n'],
        [
          ['=1+1', -3],
          ['a,b', 2],
          ['@x', null],
          ['六四', 1],
        ],
      ),
    ).toBe('term,n\r\n\'=1+1,-3\r\n"a,b",2\r\n\'@x,\r\n六四,1\r\n');
  });
});

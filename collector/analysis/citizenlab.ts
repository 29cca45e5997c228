/**
 * Reader for the Citizen Lab keyword CSVs (WeChat lists): a keyword column whose combinations
 * join their components with `+`. Pure parsing; the caller reads the file.
 */

export interface KeywordEntry {
  /** The keyword as published, e.g. `六四+刘晓波`. */
  keyword: string;
  /** Its components (trimmed, non-empty), e.g. [`六四`, `刘晓波`]. */
  components: string[];
}

/** RFC 4180-style CSV rows (quoted fields, doubled quotes, CRLF or LF). */
export function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i]!;
    if (quoted) {
      if (ch === '"' && text[i + 1] === '"') {
        field += '"';
        i++;
      } else if (ch === '"') quoted = false;
      else field += ch;
    } else if (ch === '"') quoted = true;
    else if (ch === ',') {
      row.push(field);
      field = '';
    } else if (ch === '\n' || ch === '\r') {
      if (ch === '\r' && text[i + 1] === '\n') i++;
      row.push(field);
      rows.push(row);
      row = [];
      field = '';
    } else field += ch;
  }
  if (field !== '' || row.length > 0) {
    row.push(field);
    rows.push(row);
  }
  return rows.filter((r) => r.some((f) => f.trim() !== ''));
}

const KEYWORD_COLUMNS = ['keyword', 'keyword_combination'];

/** Entries of a Citizen Lab keyword CSV (column `Keyword` or `keyword_combination`). */
export function parseKeywordCsv(text: string): KeywordEntry[] {
  const [header, ...rows] = parseCsv(text.replace(/^\uFEFF/, ''));
  if (!header) return [];
  const col = header.findIndex((h) => KEYWORD_COLUMNS.includes(h.trim().toLowerCase()));
  if (col < 0) throw new Error(`no keyword column in header: ${header.join(',')}`);
  const out: KeywordEntry[] = [];
  for (const r of rows) {
    const keyword = (r[col] ?? '').trim();
    const components = keyword
      .split('+')
      .map((c) => c.trim())
      .filter((c) => c !== '');
    if (components.length > 0) out.push({ keyword, components });
  }
  return out;
}

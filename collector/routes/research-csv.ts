/**
 * CSV (RFC 4180) for the research API: every field that holds a comma, quote, CR or LF
 * is quoted with quotes doubled.
 *
 * Text cells that a spreadsheet would run as a formula (starting with `=`, `+`, `-`, `@`, tab
 * or CR) get a leading `'`. Received text comes from the platform, which here is the
 * adversary: a censor that rewrites messages could plant `=HYPERLINK(…)` in a researcher's
 * export. Numbers are never prefixed. JSON and NDJSON carry every text verbatim; use them
 * when the exact text matters.
 */
export type CsvValue = string | number | boolean | null | undefined | readonly string[];

const FORMULA_START = /^[=+\-@\t\r]/;

export function csvField(value: CsvValue): string {
  if (value === null || value === undefined) return '';
  let text = Array.isArray(value) ? JSON.stringify(value) : String(value);
  if (typeof value === 'string' && FORMULA_START.test(text)) text = `'${text}`;
  return /[",\r\n]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}

export function csvLine(values: readonly CsvValue[]): string {
  return `${values.map(csvField).join(',')}\r\n`;
}

export function csvTable(header: readonly string[], rows: readonly (readonly CsvValue[])[]): string {
  return csvLine(header) + rows.map(csvLine).join('');
}

/** True when the client asked for CSV by `format=csv` or by `Accept: text/csv`. */
export function wantsCsv(format: string | undefined, accept: string | undefined): boolean {
  if (format) return format === 'csv';
  return typeof accept === 'string' && /(^|,)\s*text\/csv\b/i.test(accept);
}

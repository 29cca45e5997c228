/**
 * CSV (RFC 4180) for the research API: every field that holds a comma, quote, CR or LF
 * is quoted with quotes doubled. Text (terms, received text) is written verbatim: a
 * spreadsheet user should import as text rather than open the file directly.
 */
export type CsvValue = string | number | boolean | null | undefined | readonly string[];

export function csvField(value: CsvValue): string {
  if (value === null || value === undefined) return '';
  const text = Array.isArray(value) ? JSON.stringify(value) : String(value);
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

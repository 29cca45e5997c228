/**
 * CSV of the data behind a chart, downloaded from the browser (RFC 4180 quoting). Text cells a
 * spreadsheet would run as a formula (`=`, `+`, `-`, `@`, tab, CR first) get a leading `'`, as in
 * the research API's CSV: terms and texts can come from the adversary.
 */
export type Cell = string | number | null | undefined;

export function toCsv(header: readonly string[], rows: readonly (readonly Cell[])[]): string {
  const field = (v: Cell) => {
    let s = v === null || v === undefined ? '' : String(v);
    if (typeof v === 'string' && /^[=+\-@\t\r]/.test(s)) s = `'${s}`;
    return /[",\r\n]/.test(s) ? `"${s.replaceAll('"', '""')}"` : s;
  };
  return [header, ...rows]
    .map((r) => r.map(field).join(','))
    .join('\r\n')
    .concat('\r\n');
}

export function downloadCsv(
  filename: string,
  header: readonly string[],
  rows: readonly (readonly Cell[])[],
): void {
  const blob = new Blob([toCsv(header, rows)], { type: 'text/csv;charset=utf-8' });
  const url = URL.createObjectURL(blob);
  const a = document.createElement('a');
  a.href = url;
  a.download = filename;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

/**
 * A small RFC 4180 CSV reader: comma-separated fields, records ended by CRLF, LF or CR,
 * fields optionally in double quotes with `""` for a quote and commas or line breaks
 * inside. No package in the tree reads CSV, and this is all the Citizen Lab files need.
 */

export interface CsvRecord {
  /** 1-based line on which the record starts. */
  line: number;
  fields: string[];
}

export interface CsvResult {
  records: CsvRecord[];
  errors: { line: number; message: string }[];
}

export function parseCsv(text: string): CsvResult {
  const src = text.startsWith('\uFEFF') ? text.slice(1) : text;
  const records: CsvRecord[] = [];
  const errors: { line: number; message: string }[] = [];
  let fields: string[] = [];
  let field = '';
  let line = 1;
  let recordLine = 1;
  let i = 0;
  let fieldStarted = false;

  const endField = () => {
    fields.push(field);
    field = '';
    fieldStarted = false;
  };
  const endRecord = () => {
    endField();
    // A record of one empty field is a blank line: skip it.
    if (!(fields.length === 1 && fields[0] === '')) records.push({ line: recordLine, fields });
    fields = [];
  };

  while (i < src.length) {
    const ch = src[i];
    if (ch === '"' && !fieldStarted && field === '') {
      // Quoted field.
      const startLine = line;
      i++;
      let closed = false;
      while (i < src.length) {
        const c = src[i];
        if (c === '"') {
          if (src[i + 1] === '"') {
            field += '"';
            i += 2;
            continue;
          }
          closed = true;
          i++;
          break;
        }
        if (c === '\r' || c === '\n') {
          if (c === '\r' && src[i + 1] === '\n') {
            field += '\r';
            i++;
          }
          line++;
        }
        field += src[i];
        i++;
      }
      fieldStarted = true;
      if (!closed) {
        errors.push({ line: startLine, message: 'unterminated quoted field' });
        break;
      }
      const next = src[i];
      if (next !== undefined && next !== ',' && next !== '\r' && next !== '\n') {
        errors.push({ line, message: 'text after a closing quote' });
        // Keep the stray text in the field, as most readers do.
        while (i < src.length && src[i] !== ',' && src[i] !== '\r' && src[i] !== '\n') field += src[i++];
      }
      continue;
    }
    if (ch === ',') {
      endField();
      i++;
      continue;
    }
    if (ch === '\r' || ch === '\n') {
      endRecord();
      i += ch === '\r' && src[i + 1] === '\n' ? 2 : 1;
      line++;
      recordLine = line;
      continue;
    }
    field += ch;
    fieldStarted = true;
    i++;
  }
  if (field !== '' || fields.length > 0 || fieldStarted) endRecord();
  return { records, errors };
}

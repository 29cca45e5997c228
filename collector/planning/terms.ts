/**
 * Term sets: parsing silentdrop term files and importing the Citizen Lab CSV lists.
 *
 * Term file format (UTF-8, one term set a line):
 *   六四 + 刘晓波        a combination of two terms
 *   六四+刘晓波          the same (the Citizen Lab spelling; `+` always separates)
 *   # a comment          whole-line comments only: `#` inside a term is kept (hashtags)
 * Terms are NFC-normalised and trimmed, otherwise kept verbatim (case, inner spaces).
 * A literal `+` cannot be part of a term. Duplicate terms in a set are dropped; a set
 * that repeats an earlier line (in any order) is reported and kept once.
 */
import { parseCsv } from './csv.ts';

export interface LineError {
  line: number;
  message: string;
}

/** Longest accepted line of a term file, in code points. */
export const MAX_LINE_CODE_POINTS = 1000;
/** Most terms in one set. The Citizen Lab lists have at most 6. */
export const MAX_TERMS_PER_SET = 16;
/** The largest term list read (the Citizen Lab files are a few hundred kB). */
export const MAX_TERM_FILE_BYTES = 16 * 1024 * 1024;
const OVERSIZE: LineError = {
  line: 1,
  message: `the file is larger than ${MAX_TERM_FILE_BYTES / 1024 / 1024} MiB; nothing was read`,
};

/** NFC, surrounding whitespace removed; nothing else changes. */
export function normalizeTerm(term: string): string {
  return term.normalize('NFC').trim();
}

/** The separator of a term set's key (and the house spelling in term files). */
const TERM_SET_SEPARATOR = ' + ';

/**
 * A term set's canonical, order-independent key (stored in findings, sequential_states and
 * derived_term_sets). Built by `termSetKey` and read by `parseTermSetKey` only; the other
 * keys (scope, finding, follow-up) are in collector/keys.ts.
 */
export type TermSetKey = string & { readonly __key: 'term set' };

/** A term set in canonical form: normalised, de-duplicated, sorted by code point. */
export function canonicalTermSet(terms: readonly string[]): string[] {
  const unique = [...new Set(terms.map(normalizeTerm))];
  unique.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  return unique;
}

/**
 * Canonical, order-independent key of a term set: normalised, de-duplicated, sorted by code
 * point, joined with ` + `. Throws for a term that would make the key ambiguous: empty, or
 * containing ` + `, or starting with `+ ` or ending with ` +` (`a +` beside `b` would read as
 * `a` beside `+ b`). No input carries one: term files and the Citizen Lab importer split on
 * `+` (or, for space combinations, on white space). A `+` elsewhere (`C++`, `x+y`) is kept.
 */
export function termSetKey(terms: readonly string[]): TermSetKey {
  const canonical = canonicalTermSet(terms);
  for (const t of canonical) {
    if (t === '' || t.includes(TERM_SET_SEPARATOR) || t.startsWith('+ ') || t.endsWith(' +'))
      throw new Error(`not a term of a term set key: ${JSON.stringify(t)}`);
  }
  return canonical.join(TERM_SET_SEPARATOR) as TermSetKey;
}

/** The terms of a key `termSetKey` built (canonical order); throws for a string it cannot have built. */
export function parseTermSetKey(key: string): string[] {
  const terms = key === '' ? [] : key.split(TERM_SET_SEPARATOR);
  if (termSetKey(terms) !== key) throw new Error(`not a term set key: ${JSON.stringify(key)}`);
  return terms;
}

/** Splits one set on `+` (with or without spaces). Returns the terms or an error message. */
export function splitTermSet(
  text: string,
  separator: RegExp = /\+/,
): { terms: string[] } | { error: string } {
  const parts = text.split(separator).map(normalizeTerm);
  if (parts.some((p) => p === '')) return { error: 'empty term (a `+` with nothing on one side)' };
  const terms = [...new Set(parts)];
  if (terms.length > MAX_TERMS_PER_SET) return { error: `more than ${MAX_TERMS_PER_SET} terms in one set` };
  return { terms };
}

export function parseTermFile(text: string): { termSets: string[][]; errors: LineError[] } {
  if (Buffer.byteLength(text) > MAX_TERM_FILE_BYTES) return { termSets: [], errors: [OVERSIZE] };
  const src = text.startsWith('\uFEFF') ? text.slice(1) : text;
  const termSets: string[][] = [];
  const errors: LineError[] = [];
  const seen = new Map<string, number>();
  src.split(/\r\n|\n|\r/).forEach((raw, index) => {
    const line = index + 1;
    const trimmed = raw.trim();
    if (trimmed === '' || trimmed.startsWith('#')) return;
    if ([...raw].length > MAX_LINE_CODE_POINTS) {
      errors.push({ line, message: `line longer than ${MAX_LINE_CODE_POINTS} characters` });
      return;
    }
    const split = splitTermSet(trimmed);
    if ('error' in split) {
      errors.push({ line, message: split.error });
      return;
    }
    const key = termSetKey(split.terms);
    const earlier = seen.get(key);
    if (earlier !== undefined) {
      errors.push({ line, message: `same term set as line ${earlier}; kept once` });
      return;
    }
    seen.set(key, line);
    termSets.push(split.terms);
  });
  return { termSets, errors };
}

export type CitizenLabFormat = 'one-app-two-systems' | '709crackdown' | 'liu-xiaobo' | 'coronavirus';

export interface ImportedTermSet {
  terms: string[];
  /** Every other column of the row (snake_case keys, trimmed values) plus `format`, `line` and `file`. */
  meta: Record<string, string>;
}

const COLUMN_KEYS: Record<string, string> = {
  '# of components': 'components',
  '1-1 chat': 'direct_chat',
  'english translation': 'translation',
};

function columnKey(header: string): string {
  const h = header.trim().toLowerCase();
  return COLUMN_KEYS[h] ?? h.replace(/[^a-z0-9]+/g, '_').replace(/^_|_$/g, '');
}

function detectFormat(keys: string[]): CitizenLabFormat | undefined {
  if (keys.includes('keyword_combination')) return 'coronavirus';
  if (!keys.includes('keyword')) return undefined;
  if (keys.includes('components')) return '709crackdown';
  if (keys.includes('keyword_type')) return 'one-app-two-systems';
  if (keys.includes('group_chat')) return 'liu-xiaobo';
  return undefined;
}

/**
 * Reads any of the four Citizen Lab WeChat CSV formats (told apart by their headers).
 * Combinations are `+`-joined, except in "One App, Two Systems", whose rows of Keyword
 * Type `combo` separate components by spaces; there, `phrase` rows keep their spaces.
 */
export function importCitizenLabCsv(
  text: string,
  options: { file?: string } = {},
): { termSets: ImportedTermSet[]; errors: LineError[]; format?: CitizenLabFormat } {
  if (Buffer.byteLength(text) > MAX_TERM_FILE_BYTES) return { termSets: [], errors: [OVERSIZE] };
  const { records, errors } = parseCsv(text);
  const header = records[0];
  if (!header) return { termSets: [], errors: [...errors, { line: 1, message: 'empty file' }] };
  const keys = header.fields.map(columnKey);
  const format = detectFormat(keys);
  if (!format) {
    return {
      termSets: [],
      errors: [...errors, { line: header.line, message: 'not a known Citizen Lab format' }],
    };
  }
  const keywordIndex = keys.indexOf(format === 'coronavirus' ? 'keyword_combination' : 'keyword');
  const termSets: ImportedTermSet[] = [];
  for (const record of records.slice(1)) {
    const meta: Record<string, string> = { format, line: String(record.line) };
    if (options.file !== undefined) meta.file = options.file;
    keys.forEach((key, i) => {
      const value = (record.fields[i] ?? '').trim();
      if (i !== keywordIndex && key !== '' && value !== '') meta[key] = value;
    });
    const keyword = record.fields[keywordIndex] ?? '';
    const isSpaceCombo = format === 'one-app-two-systems' && meta.keyword_type === 'combo';
    const split = splitTermSet(keyword.trim(), isSpaceCombo ? /\s+/ : /\+/);
    if ('error' in split) {
      errors.push({ line: record.line, message: split.error });
      continue;
    }
    if (meta.components !== undefined && Number(meta.components) !== split.terms.length) {
      errors.push({
        line: record.line,
        message: `row says ${meta.components} components, keyword has ${split.terms.length}`,
      });
    }
    termSets.push({ terms: split.terms, meta });
  }
  return { termSets, errors, format };
}

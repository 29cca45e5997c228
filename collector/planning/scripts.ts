/**
 * Which script a term is written in, and for Chinese whether it is simplified or
 * traditional. Scripts come from Unicode's Script property; the Han variant from the
 * character table in hanVariants.ts (see its limits there).
 */
import { SIMPLIFIED_ONLY, TRADITIONAL_ONLY } from './hanVariants.ts';

/** Letter scripts silentdrop can build controls for, plus `other` letters (Cyrillic, Hangul, ...). */
export type LetterFamily = 'han' | 'latin' | 'tibetan' | 'arabic' | 'devanagari' | 'other';
/** A run's kind: letters of one family, decimal digits, or separators (spaces, punctuation, symbols). */
export type RunFamily = LetterFamily | 'digit' | 'separator';
export type HanVariant = 'simplified' | 'traditional' | 'neutral' | 'mixed';

/**
 * A term's script. `han-neutral`: Chinese with no character that differs between the
 * variants (六四). `han-mixed`: characters of both variants. `arabic` covers Uyghur.
 * `mixed`: letters of several families (法lun功). `common`: digits/punctuation only.
 */
export type TermScript =
  | 'han-simplified'
  | 'han-traditional'
  | 'han-neutral'
  | 'han-mixed'
  | 'latin'
  | 'tibetan'
  | 'arabic'
  | 'devanagari'
  | 'other'
  | 'mixed'
  | 'common';

export interface ScriptRun {
  family: RunFamily;
  text: string;
  /** Length in code points. */
  length: number;
}

const RE = {
  han: /\p{Script=Han}/u,
  latin: /\p{Script=Latin}/u,
  tibetan: /\p{Script=Tibetan}/u,
  arabic: /\p{Script=Arabic}/u,
  devanagari: /\p{Script=Devanagari}/u,
  inherited: /[\p{Script=Inherited}\u200C\u200D]/u,
  digit: /\p{Nd}/u,
  letter: /[\p{L}\p{M}]/u,
};

/** The family of one code point; `inherited` marks (combining marks, ZWJ/ZWNJ) join the run before them. */
export function charFamily(ch: string): RunFamily | 'inherited' {
  if (RE.han.test(ch)) return 'han';
  if (RE.latin.test(ch)) return 'latin';
  if (RE.tibetan.test(ch)) return 'tibetan';
  if (RE.arabic.test(ch)) return 'arabic';
  if (RE.devanagari.test(ch)) return 'devanagari';
  if (RE.inherited.test(ch)) return 'inherited';
  if (RE.digit.test(ch)) return 'digit';
  if (RE.letter.test(ch)) return 'other';
  return 'separator';
}

/** Splits a term into maximal runs of one family. */
export function scriptRuns(term: string): ScriptRun[] {
  const runs: ScriptRun[] = [];
  for (const ch of term) {
    const f = charFamily(ch);
    const last = runs[runs.length - 1];
    if (last && (f === 'inherited' || f === last.family)) {
      last.text += ch;
      last.length++;
    } else {
      runs.push({ family: f === 'inherited' ? 'separator' : f, text: ch, length: 1 });
    }
  }
  return runs;
}

export function hanVariant(text: string): HanVariant {
  let simplified = false;
  let traditional = false;
  for (const ch of text) {
    if (SIMPLIFIED_ONLY.has(ch)) simplified = true;
    else if (TRADITIONAL_ONLY.has(ch)) traditional = true;
  }
  if (simplified && traditional) return 'mixed';
  return simplified ? 'simplified' : traditional ? 'traditional' : 'neutral';
}

const LETTER_FAMILIES: readonly RunFamily[] = ['han', 'latin', 'tibetan', 'arabic', 'devanagari', 'other'];

export function detectScript(term: string): TermScript {
  const runs = scriptRuns(term.normalize('NFC'));
  const families = new Set(runs.map((r) => r.family).filter((f) => LETTER_FAMILIES.includes(f)));
  if (families.size === 0) return 'common';
  if (families.size > 1) return 'mixed';
  const [only] = families;
  if (only === 'han') return `han-${hanVariant(term)}`;
  return only as TermScript;
}

/**
 * How silentdrop decides whether a text contains a term, for safety checks. It mirrors
 * the testbed's matching (design.md): Unicode NFKC, case-insensitive substring, after
 * removing whitespace between CJK characters. Real censors may match differently;
 * this is the strictest rule we know they use, applied to our own texts.
 */

const CJK = '\\p{Script=Han}\\p{Script=Hiragana}\\p{Script=Katakana}\\p{Script=Hangul}';
const SPACE_BETWEEN_CJK = new RegExp(`(?<=[${CJK}])\\s+(?=[${CJK}])`, 'gu');

export function matchKey(text: string): string {
  return text.normalize('NFKC').toLowerCase().replace(SPACE_BETWEEN_CJK, '');
}

/** A prepared list of terms to look for. */
export interface TriggerIndex {
  /** Match keys, de-duplicated, with the original term for reports. */
  readonly keys: readonly { key: string; term: string }[];
}

export function triggerIndex(terms: Iterable<string>): TriggerIndex {
  const byKey = new Map<string, string>();
  for (const term of terms) {
    const key = matchKey(term).trim();
    if (key !== '' && !byKey.has(key)) byKey.set(key, term);
  }
  return { keys: [...byKey].map(([key, term]) => ({ key, term })) };
}

/** The terms of the index found in the text (empty when the text is safe). */
export function findTriggers(text: string, index: TriggerIndex): string[] {
  const hay = matchKey(text);
  return index.keys.filter(({ key }) => hay.includes(key)).map(({ term }) => term);
}

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
  /**
   * The keys by their first two UTF-16 units (`pairCode`), and the one-unit keys: a text is
   * looked up once per position, instead of scanned once per key. A campaign's list holds
   * thousands of terms, and planning checks every nonce, padding and control against it.
   */
  readonly byStart: ReadonlyMap<number, readonly string[]>;
  readonly single: ReadonlySet<number>;
  /** Each key's place in `keys`. */
  readonly rank: ReadonlyMap<string, number>;
}

/** `terms` as an index: as given when built already, else built by `build`. */
export function asTriggerIndex(
  terms: Iterable<string> | TriggerIndex | undefined,
  build: (terms: Iterable<string>) => TriggerIndex = triggerIndex,
): TriggerIndex | undefined {
  if (terms === undefined) return undefined;
  if ('keys' in terms && Array.isArray(terms.keys)) return terms as TriggerIndex;
  return build(terms as Iterable<string>);
}

/** Whether `term` is one of the index's terms (by its match key, as the index keeps it). */
export function hasTerm(index: TriggerIndex, term: string): boolean {
  return index.rank.has(matchKey(term).trim());
}

/** Below this many keys, one `includes` per key is as quick as the lookups. */
const SCAN_KEYS = 16;

function pairCode(text: string, at: number): number {
  return text.charCodeAt(at) * 0x10000 + text.charCodeAt(at + 1);
}

export function triggerIndex(terms: Iterable<string>): TriggerIndex {
  const byKey = new Map<string, string>();
  for (const term of terms) {
    const key = matchKey(term).trim();
    if (key !== '' && !byKey.has(key)) byKey.set(key, term);
  }
  const byStart = new Map<number, string[]>();
  const single = new Set<number>();
  for (const key of byKey.keys()) {
    if (key.length === 1) {
      single.add(key.charCodeAt(0));
      continue;
    }
    const code = pairCode(key, 0);
    const same = byStart.get(code);
    if (same) same.push(key);
    else byStart.set(code, [key]);
  }
  const keys = [...byKey].map(([key, term]) => ({ key, term }));
  return { keys, byStart, single, rank: new Map(keys.map(({ key }, i) => [key, i])) };
}

/** The terms of the index found in the text (empty when the text is safe), in the index's order. */
export function findTriggers(text: string, index: TriggerIndex): string[] {
  const hay = matchKey(text);
  if (index.keys.length <= SCAN_KEYS) {
    return index.keys.filter(({ key }) => hay.includes(key)).map(({ term }) => term);
  }
  let found: Set<string> | undefined;
  for (let i = 0; i < hay.length; i++) {
    if (index.single.has(hay.charCodeAt(i))) {
      found ??= new Set();
      found.add(hay.charAt(i));
    }
    if (i + 1 === hay.length) break;
    for (const key of index.byStart.get(pairCode(hay, i)) ?? []) {
      if (hay.startsWith(key, i)) {
        found ??= new Set();
        found.add(key);
      }
    }
  }
  if (found === undefined) return [];
  return [...found]
    .map((key) => index.rank.get(key) ?? 0)
    .sort((a, b) => a - b)
    .map((i) => index.keys[i]?.term ?? '');
}

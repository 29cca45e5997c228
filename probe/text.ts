/**
 * Text from a chat is hostile: anyone in a group can post NUL bytes, lone UTF-16
 * surrogates (broken Unicode from a buggy or malicious client) and huge messages. The
 * probe keeps the text as seen, but never hands the collector a value it cannot store
 * (see docs/decisions/010-hostile-text-on-the-probe.md):
 *
 * - U+0000 (NUL) and every lone surrogate become U+FFFD;
 * - text longer than the bound is cut on a grapheme-cluster boundary (falling back to a
 *   code-point boundary when a single cluster is longer than the bound), so a cut never
 *   leaves half a surrogate pair and never splits an emoji sequence when it can help it.
 *
 * Bounds are in Unicode code points, as JSON Schema's `maxLength` (and the protocol's
 * `LIMITS.textChars`) counts them: 8,192 code points are at most 16,384 UTF-16 code units
 * and at most 32,768 UTF-8 bytes.
 */

/** How a text was changed to make it representable; recorded in the event (`text_changes`). */
export type TextChange = 'truncated' | 'nul_replaced' | 'lone_surrogate_replaced';

export interface RepresentableText {
  text: string;
  /** Empty when the text is exactly as seen. */
  changes: TextChange[];
}

const REPLACEMENT = '\uFFFD';
// A high surrogate not followed by a low one, or a low surrogate not preceded by a high one.
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

let segmenter: Intl.Segmenter | undefined;

/** The longest prefix of `s` holding at most `maxCodePoints` code points, cut as described above. */
export function cutToCodePoints(s: string, maxCodePoints: number): string {
  // Fast path: even if every unit were its own code point, it fits.
  if (s.length <= maxCodePoints) return s;
  // Where the code-point bound falls, in UTF-16 units.
  let units = 0;
  let points = 0;
  while (units < s.length && points < maxCodePoints) {
    const c = s.charCodeAt(units);
    const pair =
      c >= 0xd800 && c <= 0xdbff && units + 1 < s.length && (s.charCodeAt(units + 1) & 0xfc00) === 0xdc00;
    units += pair ? 2 : 1;
    points += 1;
  }
  if (units >= s.length) return s;
  // Back off to the last grapheme boundary at or before `units`; look only at a window
  // around the cut so a megabyte of text costs no more than a short one.
  segmenter ??= new Intl.Segmenter(undefined, { granularity: 'grapheme' });
  const windowStart = Math.max(0, units - 256);
  let boundary = -1;
  for (const seg of segmenter.segment(s.slice(windowStart, units + 256))) {
    const at = windowStart + seg.index;
    if (at > units) break;
    // The window's first segment may start mid-cluster; only a boundary after it counts.
    if (seg.index > 0 || windowStart === 0) boundary = at;
  }
  // No boundary in the window (one giant cluster, e.g. a "zalgo" mark pile): cut between
  // code points, which is always safe for the encoding.
  return s.slice(0, boundary > 0 ? boundary : units);
}

/**
 * Makes `s` representable in the protocol and in Postgres: cut to `maxCodePoints`, NUL and
 * lone surrogates replaced by U+FFFD. `changes` says what was done to the text kept.
 */
export function representable(s: string, maxCodePoints: number): RepresentableText {
  const changes: TextChange[] = [];
  // Cut first (a megabyte costs no more than the bound): replacing one code unit by
  // U+FFFD changes no boundary, so the order does not change the result.
  let text = cutToCodePoints(s, maxCodePoints);
  const truncated = text.length < s.length;
  if (text.includes('\u0000')) {
    text = text.replaceAll('\u0000', REPLACEMENT);
    changes.push('nul_replaced');
  }
  LONE_SURROGATE.lastIndex = 0;
  if (LONE_SURROGATE.test(text)) {
    text = text.replace(LONE_SURROGATE, REPLACEMENT);
    changes.push('lone_surrogate_replaced');
  }
  if (truncated) changes.push('truncated');
  return { text, changes };
}

/** `representable(s, max).text`, for short fields (handles, ids) where the change is not recorded. */
export function representableString(s: string, maxCodePoints: number): string {
  return representable(s, maxCodePoints).text;
}

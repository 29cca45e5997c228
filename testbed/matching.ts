/**
 * Term matching as the design states it: Unicode NFKC, case-insensitive substring,
 * after removing whitespace between CJK characters. Both the message and the terms
 * go through the same normalisation. Matches are mapped back onto the original text
 * so `replace` can mask exactly the matched stretch in a recipient's copy.
 */
import type { TermMatch } from './policy.ts';

/** Han, kana, Hangul, Bopomofo, and the CJK symbols block. */
const CJK =
  /[\p{Script=Han}\p{Script=Hiragana}\p{Script=Katakana}\p{Script=Hangul}\p{Script=Bopomofo}\u3000-\u303f]/u;
const SPACE_ONLY = /^\s+$/u;
const graphemes = new Intl.Segmenter(undefined, { granularity: 'grapheme' });

interface Piece {
  /** Normalised text of one grapheme cluster (may be empty or several characters). */
  norm: string;
  start: number;
  end: number;
}

/** Grapheme clusters of `text`, each NFKC + lower-cased, with CJK-internal whitespace removed. */
function pieces(text: string): Piece[] {
  const out: Piece[] = [];
  for (const seg of graphemes.segment(text)) {
    out.push({
      norm: seg.segment.normalize('NFKC').toLowerCase(),
      start: seg.index,
      end: seg.index + seg.segment.length,
    });
  }
  // Drop whitespace runs whose neighbours on both sides are CJK.
  let i = 0;
  while (i < out.length) {
    if (!SPACE_ONLY.test(out[i]?.norm ?? '')) {
      i++;
      continue;
    }
    let j = i;
    while (j < out.length && SPACE_ONLY.test(out[j]?.norm ?? '')) j++;
    const before = out[i - 1]?.norm;
    const after = out[j]?.norm;
    const beforeChar = before ? Array.from(before).at(-1) : undefined;
    const afterChar = after ? Array.from(after)[0] : undefined;
    if (beforeChar && afterChar && CJK.test(beforeChar) && CJK.test(afterChar)) {
      for (let k = i; k < j; k++) {
        const p = out[k];
        if (p) p.norm = '';
      }
    }
    i = j;
  }
  return out;
}

/** The normalised form used for matching (exported for tests and diagnostics). */
export function normalize(text: string): string {
  return pieces(text)
    .map((p) => p.norm)
    .join('');
}

export interface TermHit {
  term: string;
  /** [start, end) in the original text's UTF-16 offsets. */
  ranges: Array<[number, number]>;
}

/** Where each term occurs in `text`; terms that do not occur are left out. */
export function findTerms(text: string, terms: readonly string[]): TermHit[] {
  const ps = pieces(text);
  let flat = '';
  const owner: number[] = []; // flat char index -> piece index
  ps.forEach((p, idx) => {
    flat += p.norm;
    for (let k = 0; k < p.norm.length; k++) owner.push(idx);
  });
  const hits: TermHit[] = [];
  for (const term of new Set(terms)) {
    const needle = normalize(term);
    if (needle === '') continue;
    const ranges: Array<[number, number]> = [];
    let from = 0;
    for (;;) {
      const at = flat.indexOf(needle, from);
      if (at < 0) break;
      const first = ps[owner[at] ?? 0];
      const last = ps[owner[at + needle.length - 1] ?? 0];
      if (first && last) ranges.push([first.start, last.end]);
      from = at + needle.length;
    }
    if (ranges.length > 0) hits.push({ term, ranges });
  }
  return hits;
}

/** The terms that make the match fire, or undefined when it does not fire. */
export function matchTerms(text: string, match: TermMatch): TermHit[] | undefined {
  const hits = findTerms(text, match.terms);
  if (match.mode === 'all') return hits.length === new Set(match.terms).size ? hits : undefined;
  return hits.length > 0 ? hits : undefined;
}

/** `text` with every hit's stretch replaced by `replacement` (overlapping stretches merged). */
export function replaceHits(text: string, hits: readonly TermHit[], replacement: string): string {
  const ranges = hits.flatMap((h) => h.ranges).sort((a, b) => a[0] - b[0] || b[1] - a[1]);
  const merged: Array<[number, number]> = [];
  for (const [s, e] of ranges) {
    const last = merged.at(-1);
    if (last && s < last[1]) last[1] = Math.max(last[1], e);
    else merged.push([s, e]);
  }
  let out = '';
  let pos = 0;
  for (const [s, e] of merged) {
    out += text.slice(pos, s) + replacement;
    pos = e;
  }
  return out + text.slice(pos);
}

/**
 * Nonce forms: what marks a message as a canary, defined once for the collector's
 * planner (which draws them) and the probe (which finds them in observed text). See
 * docs/decisions/011-nonce-forms.md.
 *
 * No single visible shape: the planner draws a form per test/control pair from its seeded
 * generator. Every generated form ends in check characters over the rest, so ordinary
 * text (numbers, hashes, short-link ids) that happens to have the shape is not taken for
 * a nonce except at the rate the check allows (1 in 10,000 to 1 in 195,112 per such token).
 *
 * | form     | example                          | randomness | check          |
 * |----------|----------------------------------|-----------:|----------------|
 * | `code`   | `Kq7TzM2pXa9Rwe` (14 of base58, mixed case, ≥1 digit) | 11 chars, 64 bits | 3 chars, 1/195,112 |
 * | `hex`    | `3f9a0c21d7e84b65c0de` or upper case (20 hex)         | 16 chars, 64 bits | 4 chars, 1/65,536  |
 * | `digits` | `48210-93755-12773-41093-22851` (5 groups of 5)      | 21 digits, 70 bits | 4 digits, 1/10,000 |
 * | `legacy` | `sdq3k9x0a1b2c3` (`sd` + 12 of [a-z0-9])              | 62 bits, no check  | only recognised, never drawn |
 *
 * Pure: no I/O, no Node APIs (the dashboard bundles the protocol). A nonce found in text
 * is returned exactly as it stands there; the collector matches it to its canary by
 * equality, so stored data of every form (including `legacy`) keeps matching.
 */

export type NonceForm = 'code' | 'hex' | 'digits' | 'legacy';

/** The forms the planner draws from. `legacy` is only recognised. */
export const GENERATED_NONCE_FORMS: readonly Exclude<NonceForm, 'legacy'>[] = ['code', 'hex', 'digits'];

/** JSON Schema pattern of every form's shape (the check is verified by `nonceForm`). */
export const NONCE_SCHEMA_PATTERN =
  '^(?:sd[a-z0-9]{12}|[1-9A-HJ-NP-Za-km-z]{14}|[0-9a-f]{20}|[0-9A-F]{20}|[0-9]{5}(?:-[0-9]{5}){4})$';

const BASE58 = '123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz';
const HEX = '0123456789abcdef';
const DIGITS = '0123456789';

/** FNV-1a (32 bit) over the form's name and the payload: the check every form carries. */
function check32(form: NonceForm, payload: string): number {
  let h = 0x811c9dc5;
  const s = `${form}:${payload}`;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

/** `n` as `width` digits of `alphabet` (most significant first). */
function encode(n: number, alphabet: string, width: number): string {
  let out = '';
  let v = n;
  for (let i = 0; i < width; i++) {
    out = alphabet[v % alphabet.length] + out;
    v = Math.floor(v / alphabet.length);
  }
  return out;
}

function checkChars(form: NonceForm, payload: string): string {
  const h = check32(form, payload);
  switch (form) {
    case 'code':
      return encode(h % 58 ** 3, BASE58, 3);
    case 'hex':
      return encode(h % 16 ** 4, HEX, 4);
    case 'digits':
      return encode(h % 10 ** 4, DIGITS, 4);
    case 'legacy':
      return '';
  }
}

const hasDigit = /[0-9]/;
const hasUpper = /[A-Z]/;
const hasLower = /[a-z]/;

/**
 * Draws a nonce of `form` using `randomInt(n)` (uniform in [0, n)) — the planner passes
 * its seeded generator. Redraws shapes ordinary words could take (a `code` without a
 * digit, upper and lower case letters; a `hex` without a letter or a digit).
 */
export function makeNonce(form: Exclude<NonceForm, 'legacy'>, randomInt: (n: number) => number): string {
  for (;;) {
    const draw = (alphabet: string, n: number) => {
      let s = '';
      for (let i = 0; i < n; i++) s += alphabet[randomInt(alphabet.length)];
      return s;
    };
    if (form === 'code') {
      const payload = draw(BASE58, 11);
      const nonce = payload + checkChars('code', payload);
      if (hasDigit.test(nonce) && hasUpper.test(nonce) && hasLower.test(nonce)) return nonce;
    } else if (form === 'hex') {
      const payload = draw(HEX, 16);
      const nonce = payload + checkChars('hex', payload);
      if (/[0-9]/.test(nonce) && /[a-f]/.test(nonce)) return randomInt(2) === 0 ? nonce : nonce.toUpperCase();
    } else {
      const payload = draw(DIGITS, 21);
      const all = payload + checkChars('digits', payload);
      return all.match(/.{5}/g)!.join('-');
    }
  }
}

/** The form of `candidate` when it is a well-formed nonce (shape and check), else undefined. */
export function nonceForm(candidate: string): NonceForm | undefined {
  if (/^sd[a-z0-9]{12}$/.test(candidate)) return 'legacy';
  if (/^[1-9A-HJ-NP-Za-km-z]{14}$/.test(candidate)) {
    if (!hasDigit.test(candidate) || !hasUpper.test(candidate) || !hasLower.test(candidate)) return undefined;
    return checkChars('code', candidate.slice(0, 11)) === candidate.slice(11) ? 'code' : undefined;
  }
  if (/^(?:[0-9a-f]{20}|[0-9A-F]{20})$/.test(candidate)) {
    const lower = candidate.toLowerCase();
    if (!/[0-9]/.test(lower) || !/[a-f]/.test(lower)) return undefined;
    return checkChars('hex', lower.slice(0, 16)) === lower.slice(16) ? 'hex' : undefined;
  }
  if (/^[0-9]{5}(?:-[0-9]{5}){4}$/.test(candidate)) {
    const d = candidate.replaceAll('-', '');
    return checkChars('digits', d.slice(0, 21)) === d.slice(21) ? 'digits' : undefined;
  }
  return undefined;
}

/**
 * Where a nonce may stand: each shape delimited so that it is not part of a longer token
 * of ASCII letters, digits and `_` (a 15-character token does not hold a 14-character
 * nonce); any other character (space, punctuation, Han) may touch it.
 * Fixed-width, no nested quantifiers: linear in the text's length.
 */
const CANDIDATES =
  /\bsd[a-z0-9]{12}\b|(?<![0-9A-Za-z_])[1-9A-HJ-NP-Za-km-z]{14}(?![0-9A-Za-z_])|(?<![0-9A-Za-z_])(?:[0-9a-f]{20}|[0-9A-F]{20})(?![0-9A-Za-z_])|(?<![0-9A-Za-z_-])[0-9]{5}(?:-[0-9]{5}){4}(?![0-9A-Za-z_]|-[0-9])/g;

export interface FoundNonce {
  nonce: string;
  form: NonceForm;
  /** UTF-16 index in the text. */
  index: number;
}

/** Every nonce in `text`, in order of appearance. */
export function findNonces(text: string): FoundNonce[] {
  const out: FoundNonce[] = [];
  for (const m of text.matchAll(CANDIDATES)) {
    const form = nonceForm(m[0]);
    if (form) out.push({ nonce: m[0], form, index: m.index });
  }
  return out;
}

/** The first nonce in `text`, or undefined. */
export function findNonce(text: string): FoundNonce | undefined {
  for (const m of text.matchAll(CANDIDATES)) {
    const form = nonceForm(m[0]);
    if (form) return { nonce: m[0], form, index: m.index };
  }
  return undefined;
}

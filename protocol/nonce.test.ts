import { describe, expect, it } from 'vitest';
import { NONCE_PATTERN, Nonce } from './common.ts';
import {
  findNonce,
  findNonces,
  GENERATED_NONCE_FORMS,
  makeNonce,
  NONCE_SCHEMA_PATTERN,
  nonceForm,
} from './nonce.ts';

/** A small seeded generator (mulberry32) so every run checks the same nonces. */
function seeded(seed: number): (n: number) => number {
  let a = seed >>> 0;
  return (n) => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return Math.floor((((t ^ (t >>> 14)) >>> 0) / 4294967296) * n);
  };
}

const schema = new RegExp(NONCE_SCHEMA_PATTERN);
const draw = (form: (typeof GENERATED_NONCE_FORMS)[number], count: number, seed = 1) => {
  const r = seeded(seed);
  return Array.from({ length: count }, () => makeNonce(form, r));
};

describe('nonce forms', () => {
  it('draws every form with its shape and finds it again in surrounding text', () => {
    const shapes = {
      code: /^[1-9A-HJ-NP-Za-km-z]{14}$/,
      hex: /^(?:[0-9a-f]{20}|[0-9A-F]{20})$/,
      digits: /^\d{5}(?:-\d{5}){4}$/,
    };
    for (const form of GENERATED_NONCE_FORMS) {
      for (const n of draw(form, 300)) {
        expect(n).toMatch(shapes[form]);
        expect(schema.test(n)).toBe(true);
        expect(nonceForm(n)).toBe(form);
        for (const text of [n, `${n} 天气`, `六四 (晚饭) ${n}`, `${n}: tea`, `「${n}」`, `x\n${n}\ty`]) {
          expect(findNonce(text)).toEqual({ nonce: n, form, index: text.indexOf(n) });
        }
      }
    }
  });

  it('varies case and shape: hex comes in both cases, code mixes case and digits', () => {
    const hex = draw('hex', 200);
    expect(hex.some((n) => /[a-f]/.test(n))).toBe(true);
    expect(hex.some((n) => /[A-F]/.test(n))).toBe(true);
    for (const n of draw('code', 200)) expect(n).toMatch(/(?=.*\d)(?=.*[A-Z])(?=.*[a-z])/);
  });

  it('still recognises the first form, sd + 12 of [a-z0-9]', () => {
    const n = 'sdq3k9x0a1b2c3';
    expect(nonceForm(n)).toBe('legacy');
    expect(findNonce(`hello ${n} world`)?.nonce).toBe(n);
    expect(NONCE_PATTERN.exec(`hello ${n}`)?.[0]).toBe(n);
    expect(schema.test(n)).toBe(true);
    expect((Nonce as { pattern?: string }).pattern).toBe(NONCE_SCHEMA_PATTERN);
  });

  it('does not extract look-alikes of another shape', () => {
    const code = draw('code', 1)[0]!;
    const hex = draw('hex', 1)[0]!;
    const digits = draw('digits', 1)[0]!;
    const lookAlikes = [
      `${code}x`, // 15 characters
      code.slice(1), // 13
      `x${code}`,
      code.toLowerCase(),
      code.toUpperCase(),
      `${hex}0`,
      hex.slice(1),
      `${hex.slice(0, 10)}${hex.slice(10).toUpperCase() === hex.slice(10) ? hex.slice(10).toLowerCase() : hex.slice(10).toUpperCase()}`, // mixed case
      `${digits}-1`,
      `1${digits}`,
      digits.replaceAll('-', ''),
      digits.replaceAll('-', ' '),
      digits.replaceAll('-', '.'),
      `${digits.slice(0, 5)}${digits.slice(6)}`, // a group of 10
      'sdq3k9x0a1b2c', // legacy with 11
      'sdq3k9x0a1b2c3d',
      'SDQ3K9X0A1B2C3',
      `${code}_1`,
    ];
    for (const s of lookAlikes) {
      expect(findNonces(`say ${s} now`), s).toEqual([]);
    }
    // Glued to other letters or digits, a nonce is part of a longer token: not a nonce.
    expect(findNonce(`a${hex}`)).toBeUndefined();
    expect(findNonce(`${digits}7`)).toBeUndefined();
  });

  it('rejects a changed character at the rate the check allows', () => {
    // Every single-character substitution of 100 nonces per form, in place: the check must
    // catch all but about 1 in its range (code 195,112; hex 65,536; digits 10,000).
    const bound = { code: 1 / 20_000, hex: 1 / 5_000, digits: 1 / 1_000 };
    for (const form of GENERATED_NONCE_FORMS) {
      const alphabet =
        form === 'code'
          ? '123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz'
          : form === 'hex'
            ? '0123456789abcdef'
            : '0123456789';
      let tried = 0;
      let accepted = 0;
      for (const n of draw(form, 100, 7)) {
        const lower = form === 'hex' ? n.toLowerCase() : n;
        for (let i = 0; i < lower.length; i++) {
          if (lower[i] === '-') continue;
          for (const c of alphabet) {
            if (c === lower[i]) continue;
            const m = lower.slice(0, i) + c + lower.slice(i + 1);
            tried += 1;
            if (nonceForm(m) !== undefined) accepted += 1;
          }
        }
      }
      expect(tried).toBeGreaterThan(10_000);
      expect(accepted / tried, form).toBeLessThan(bound[form]);
    }
  });

  it('takes random tokens of a nonce shape for a nonce only at the check rate', () => {
    // Ordinary text that happens to have a nonce's shape: order numbers, hashes, ids.
    // (Measured over 2 million tokens each: digits 1.0e-4, hex 1.1e-5, code 5e-6.)
    const r = seeded(99);
    const rate = (alphabet: string, len: number, shape: (t: string) => string) => {
      let hits = 0;
      const n = 40_000;
      for (let i = 0; i < n; i++) {
        let t = '';
        for (let j = 0; j < len; j++) t += alphabet[r(alphabet.length)];
        if (nonceForm(shape(t)) !== undefined) hits += 1;
      }
      return hits / n;
    };
    const same = (t: string) => t;
    expect(rate('0123456789', 25, (t) => t.match(/.{5}/g)!.join('-'))).toBeLessThan(3 / 10_000);
    expect(rate('0123456789abcdef', 20, same)).toBeLessThan(1 / 5_000);
    expect(rate('123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz', 14, same)).toBeLessThan(
      1 / 20_000,
    );
  });

  it('finds every nonce of a text in order and scans a long text in linear time', () => {
    const [a, b] = [draw('code', 1, 3)[0]!, draw('digits', 1, 4)[0]!];
    expect(findNonces(`${a} and ${b}`).map((f) => f.nonce)).toEqual([a, b]);
    const t0 = performance.now();
    expect(findNonce(`${'Ab1'.repeat(400_000)} ${'1234-'.repeat(200_000)}`)).toBeUndefined();
    expect(performance.now() - t0).toBeLessThan(2000);
  });
});

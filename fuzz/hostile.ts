/**
 * fast-check arbitraries for what a hostile client sends: strings (NUL, lone surrogates,
 * split emoji, bidi and zero-width characters, huge, SQL- and HTML-looking), numbers
 * (2^31, -2^63, 1e308, NaN as a string), timestamps (year 0000, 23:59:60, +275760) and
 * JSON shapes (deep nesting, huge arrays, wrong types, `__proto__` keys). Shared by the
 * seeded property suite (fuzz.test.ts) and the live runner (run.ts).
 */
import fc from 'fast-check';

/** Characters and fragments that break naive text handling. */
export const HOSTILE_FRAGMENTS = [
  '\u0000', // NUL: Postgres text and jsonb refuse it
  '\uD83D', // a lone high surrogate: half of an emoji
  '\uDE00', // a lone low surrogate
  '😀'.slice(0, 1), // an emoji cut in the middle
  '👩‍👩‍👧‍👦', // a ZWJ sequence (one grapheme, many code units)
  '\u202E', // right-to-left override
  '\u2066\u2069', // bidi isolates
  '\u200B\u200C\u200D\u2060\uFEFF', // zero-width characters and BOM
  '\u0301\u0301\u0301', // stacked combining marks
  '\r\n',
  '\u2028\u2029', // JS line separators
  "'; drop table events; --",
  "' or '1'='1",
  '$1::text',
  '<script>alert(1)</script>',
  '<img src=x onerror=alert(1)>',
  '{{7*7}}#{7*7}',
  '../../../../etc/passwd',
  '%00%ff%c0%af',
  '\\u0000',
  '\u001b[31m', // terminal escape
  'ＳＤ', // full-width look-alike letters
] as const;

/** A nonce look-alike: right shape, wrong shape, or a real-looking one glued to other text. */
export const nonceLike = fc.oneof(
  fc.stringMatching(/^sd[a-z0-9]{12}$/),
  fc.stringMatching(/^SD[A-Z0-9]{12}$/),
  fc.stringMatching(/^sd[a-z0-9]{11,13}$/),
  fc.stringMatching(/^sd[a-z0-9]{12}$/).map((n) => `${n.slice(0, 7)}\u200B${n.slice(7)}`),
  fc.stringMatching(/^sd[a-z0-9]{12}$/).map((n) => `x${n}y`),
);

/** Strings a hostile member or probe would send; `maxHuge` bounds the huge ones. */
export function hostileString(maxHuge = 20_000): fc.Arbitrary<string> {
  const fragment = fc.constantFrom(...HOSTILE_FRAGMENTS);
  return fc.oneof(
    {
      weight: 4,
      arbitrary: fc
        .array(fc.oneof(fragment, fc.string({ maxLength: 8 })), { maxLength: 8 })
        .map((p) => p.join('')),
    },
    { weight: 2, arbitrary: fc.string({ unit: 'binary', maxLength: 64 }) },
    {
      weight: 2,
      arbitrary: fc.string({
        unit: fc.integer({ min: 0xd800, max: 0xdfff }).map((c) => String.fromCharCode(c)),
        maxLength: 4,
      }),
    },
    { weight: 1, arbitrary: fc.constantFrom('', ' ', '\t', 'null', 'undefined', 'NaN', 'true', '[]', '{}') },
    {
      weight: 1,
      arbitrary: fc
        .tuple(fragment, fc.integer({ min: 1, max: maxHuge }))
        .map(([f, n]) => f.repeat(Math.ceil(n / Math.max(1, f.length))).slice(0, n)),
    },
    {
      weight: 1,
      arbitrary: fc.integer({ min: 8190, max: Math.max(8195, maxHuge) }).map((n) => 'a'.repeat(n)),
    },
    { weight: 1, arbitrary: fc.tuple(nonceLike, nonceLike, fragment).map(([a, b, f]) => `${a} ${f} ${b}`) },
  );
}

/** Numbers where types and ranges break: int32/int64 edges, floats, NaN as a string. */
export const hostileNumber: fc.Arbitrary<unknown> = fc.oneof(
  fc.constantFrom(
    2 ** 31,
    2 ** 31 - 1,
    -(2 ** 31),
    2 ** 32,
    2 ** 53,
    -(2 ** 63),
    2 ** 63,
    1e308,
    -1e308,
    5e-324,
    -0,
    0.5,
    Number.MAX_SAFE_INTEGER + 2,
  ),
  fc.constantFrom('NaN', 'Infinity', '-Infinity', '1e308', '0x10', '', '1_000', ' 1', '9'.repeat(400)),
  fc.double(),
  fc.integer(),
);

/** Timestamps at and past the edges of what Date, Postgres and RFC 3339 accept. */
export const hostileTimestamp: fc.Arbitrary<unknown> = fc.oneof(
  fc.constantFrom(
    '0000-01-01T00:00:00.000Z',
    '0001-01-01T00:00:00Z',
    '1969-12-31T23:59:59.999Z',
    '2016-12-31T23:59:60Z',
    '2026-06-30T23:59:60.000Z',
    '+275760-09-13T00:00:00.000Z',
    '+275760-09-13T00:00:00.001Z',
    '-271821-04-20T00:00:00.000Z',
    '9999-12-31T23:59:59.999Z',
    '10000-01-01T00:00:00Z',
    '2026-02-30T00:00:00Z',
    '2026-13-01T00:00:00Z',
    '2026-06-04T24:00:00Z',
    '2026-06-04T00:00:00+14:00',
    '2026-06-04T00:00:00-12:59',
    '2026-06-04t00:00:00z',
    '2026-06-04 00:00:00Z',
    '2026-06-04T00:00:00.123456789Z',
    '2026-06-04',
    'yesterday',
    '',
  ),
  fc.date({ noInvalidDate: true }).map((d) => d.toISOString()),
  fc.integer({ min: -8_640_000_000_000_000, max: 8_640_000_000_000_000 }),
);

/** JSON shapes a schema must refuse without falling over. */
export function hostileJson(maxArray = 5_000): fc.Arbitrary<unknown> {
  const leaf = fc.oneof(hostileString(200), hostileNumber, fc.boolean(), fc.constant(null));
  return fc.oneof(
    leaf,
    fc.integer({ min: 1, max: 2_000 }).map((depth) => {
      let v: unknown = 1;
      for (let i = 0; i < depth; i++) v = i % 2 ? { a: v } : [v];
      return v;
    }),
    fc.integer({ min: 0, max: maxArray }).map((n) => Array.from({ length: n }, (_, i) => i)),
    fc.constant(JSON.parse('{"__proto__":{"polluted":1},"constructor":{"prototype":{"polluted":1}}}')),
    fc.dictionary(fc.constantFrom('__proto__', 'constructor', 'prototype', 'toString', 'valueOf', ''), leaf),
    fc.array(leaf, { maxLength: 5 }),
    fc.dictionary(fc.string({ maxLength: 6 }), leaf, { maxKeys: 5 }),
  );
}

/** Any hostile value: string, number, timestamp or shape. */
export function hostileValue(): fc.Arbitrary<unknown> {
  return fc.oneof(hostileString(), hostileNumber, hostileTimestamp, hostileJson(600));
}

/**
 * An object with one field replaced by a hostile value (or removed, or one unknown
 * field added): mostly valid, so it reaches deep into the handler.
 */
export function mutate<T extends Record<string, unknown>>(valid: T, fields: readonly (keyof T & string)[]) {
  return fc.oneof(
    fc.tuple(fc.constantFrom(...fields), hostileValue()).map(([k, v]) => ({ ...valid, [k]: v })),
    fc.constantFrom(...fields).map((k) => {
      const { [k]: _gone, ...rest } = valid;
      return rest;
    }),
    fc
      .tuple(fc.constantFrom('__proto__', 'constructor', 'extra', ''), hostileValue())
      .map(([k, v]) =>
        JSON.parse(`{${JSON.stringify(k)}:${JSON.stringify(v) ?? 'null'},${JSON.stringify(valid).slice(1)}`),
      ),
  );
}

/** Body text that is not JSON, or JSON that is not an object. */
export const hostileRawBody: fc.Arbitrary<string> = fc.oneof(
  fc.constantFrom(
    '',
    '{',
    '}',
    '[',
    'null',
    '"x"',
    '1',
    '{"a":1,}',
    '{"a":NaN}',
    '\u0000',
    '\uFEFF{}',
    '{"a":"\\ud800"}',
  ),
  fc.string({ unit: 'binary', maxLength: 200 }),
  fc.integer({ min: 1, max: 3_000 }).map((n) => '['.repeat(n) + ']'.repeat(n)),
  fc.integer({ min: 1, max: 3_000 }).map((n) => `${'{"a":'.repeat(n)}1${'}'.repeat(n)}`),
);

import { describe, expect, it } from 'vitest';
import type { FindingScope } from './db/findings.ts';
import {
  canonicalTermSet,
  findingKey,
  isolateKey,
  parseFindingKey,
  parseFollowupKey,
  parseScopeKey,
  parseTermSetKey,
  scopeKey,
  screenKey,
  termSetKey,
} from './keys.ts';

const scope: FindingScope = {
  platform: 'testbed',
  conversation_kind: 'group',
  sender_region: 'US',
  recipient_region: 'CN',
};

describe('keys', () => {
  it('keep the stored spelling', () => {
    expect(termSetKey(['刘晓波', '六四'])).toBe('六四 + 刘晓波');
    expect(scopeKey(scope)).toBe('testbed|group|US|CN');
    expect(findingKey(['刘晓波', '六四'], scope)).toBe('六四 + 刘晓波|testbed|group|US|CN');
    expect(screenKey(scope)).toBe('screen|testbed|group|US|CN');
    expect(isolateKey(['709', '律师'], scope)).toBe('isolate|709 + 律师|testbed|group|US|CN');
  });

  it('round-trip through their parsers in canonical form', () => {
    const terms = [' 律师 ', '709', 'Cafe\u0301', '709'];
    const canonical = canonicalTermSet(terms);
    expect(canonical).toEqual(['709', 'Caf\u00e9', '律师']);
    expect(parseTermSetKey(termSetKey(terms))).toEqual(canonical);
    expect(parseTermSetKey(termSetKey([]))).toEqual([]);
    expect(parseScopeKey(scopeKey(scope))).toEqual(scope);
    expect(parseFindingKey(findingKey(terms, scope))).toEqual({ termSet: canonical, scope });
    expect(parseFollowupKey(screenKey(scope))).toEqual({ procedure: 'screen', scope });
    expect(parseFollowupKey(isolateKey(terms, scope))).toEqual({
      procedure: 'isolate',
      termSet: canonical,
      scope,
    });
  });

  it('keep terms with the scope separator, a lone plus, and key-like text apart', () => {
    const hostile = [
      'a|testbed|group|US|CN',
      'x+y',
      '+',
      '++',
      'a ++ b',
      'screen|',
      'isolate',
      '#tag',
      '\u202e',
    ];
    for (const t of hostile) {
      const key = findingKey([t, 'b'], scope);
      expect(parseFindingKey(key)).toEqual({ termSet: canonicalTermSet([t, 'b']), scope });
      expect(parseFollowupKey(isolateKey([t], scope))).toEqual({ procedure: 'isolate', termSet: [t], scope });
    }
    // distinct sets never share a key
    const sets = [['a|b'], ['a', 'b'], ['a+b'], ['a', '+', 'b'], ['a', 'b|c'], ['a|b', 'c'], ['+', 'a+b']];
    const keys = sets.map((s) => findingKey(s, scope));
    expect(new Set(keys).size).toBe(keys.length);
  });

  it('never give two term sets one key: every set of short terms over `a + |` and space', () => {
    // every term of up to three characters from the alphabet, in sets of one or two
    const alphabet = ['a', '+', ' ', '|'];
    let terms = [''];
    for (let n = 0; n < 3; n++) terms = [...terms, ...terms.flatMap((t) => alphabet.map((c) => t + c))];
    const sets = [...new Set(terms)].flatMap((t, i, all) => [[t], ...all.slice(i + 1).map((u) => [t, u])]);
    const seen = new Map<string, string>();
    let accepted = 0;
    for (const set of sets) {
      let key: string;
      try {
        key = findingKey(set, scope);
      } catch {
        continue;
      }
      accepted++;
      const canonical = JSON.stringify(canonicalTermSet(set));
      expect(JSON.stringify(parseFindingKey(key).termSet), key).toBe(canonical);
      const earlier = seen.get(key);
      if (earlier !== undefined) expect(earlier, key).toBe(canonical);
      seen.set(key, canonical);
    }
    expect(accepted).toBeGreaterThan(500);
  });

  it('refuse a term containing the term-set separator, and an empty term', () => {
    expect(() => termSetKey(['a + b'])).toThrow(/not a term/);
    // `a +` beside `b` and `a` beside `+ b` would both be `a + + b`
    expect(() => termSetKey(['a +', 'b'])).toThrow(/not a term/);
    expect(() => termSetKey(['a', '+ b'])).toThrow(/not a term/);
    expect(parseTermSetKey(termSetKey(['a', '+', 'b']))).toEqual(['+', 'a', 'b']);
    expect(parseTermSetKey(termSetKey(['C++', 'x+y']))).toEqual(['C++', 'x+y']);
    expect(() => findingKey(['a + b', 'c'], scope)).toThrow(/not a term/);
    expect(() => termSetKey([' '])).toThrow(/not a term/);
  });

  it('refuse a scope field that is empty or contains the separator', () => {
    expect(() => scopeKey({ ...scope, platform: '' })).toThrow(/platform/);
    expect(() => scopeKey({ ...scope, sender_region: 'U|S' })).toThrow(/sender region/);
    expect(() => screenKey({ ...scope, recipient_region: '' })).toThrow(/recipient region/);
  });

  it('parsers refuse strings their constructor cannot have built', () => {
    for (const bad of ['b + a', 'a +  + b', ' a', 'a + a', 'a + ']) {
      expect(() => parseTermSetKey(bad), bad).toThrow();
    }
    for (const bad of [
      'testbed|group|US',
      'testbed|chat|US|CN',
      'testbed||US|CN',
      'a|testbed|group|US|CN|x',
    ]) {
      expect(() => parseScopeKey(bad), bad).toThrow(/scope key/);
    }
    for (const bad of ['testbed|group|US|CN', 'b + a|testbed|group|US|CN', '|testbed|group|US']) {
      expect(() => parseFindingKey(bad), bad).toThrow();
    }
    for (const bad of ['screen', 'screen|', 'rounds|testbed|group|US|CN', '|testbed|group|US|CN']) {
      expect(() => parseFollowupKey(bad), bad).toThrow();
    }
  });
});

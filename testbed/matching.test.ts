import { describe, expect, it } from 'vitest';
import { findTerms, matchTerms, normalize, replaceHits } from './matching.ts';

describe('term matching', () => {
  it('folds full-width and compatibility forms with NFKC', () => {
    expect(normalize('ＦａｌｕｎＧｏｎｇ')).toBe('falungong');
    expect(matchTerms('支持７０９律师', { mode: 'all', terms: ['709', '律师'] })).toBeDefined();
    expect(matchTerms('ﬁnd', { mode: 'any', terms: ['fi'] })).toBeDefined();
  });

  it('is case-insensitive', () => {
    expect(matchTerms('FREE TIBET now', { mode: 'any', terms: ['free tibet'] })).toBeDefined();
    expect(matchTerms('free tibet', { mode: 'any', terms: ['FREE Tibet'] })).toBeDefined();
  });

  it('removes whitespace between CJK characters only', () => {
    expect(normalize('六 四\u3000天　安门')).toBe('六四天安门');
    expect(matchTerms('纪念 六　四 事件', { mode: 'any', terms: ['六四'] })).toBeDefined();
    expect(normalize('free tibet')).toBe('free tibet');
    expect(matchTerms('freetibet', { mode: 'any', terms: ['free tibet'] })).toBeUndefined();
    expect(normalize('709 律师')).toBe('709 律师');
  });

  it('requires every term for all and one term for any', () => {
    const all = { mode: 'all' as const, terms: ['709', '律师'] };
    expect(matchTerms('709 律师', all)).toBeDefined();
    expect(matchTerms('709 only', all)).toBeUndefined();
    expect(matchTerms('律师 only', all)).toBeUndefined();
    expect(matchTerms('律师 only', { mode: 'any', terms: ['709', '律师'] })).toBeDefined();
    expect(matchTerms('nothing here', { mode: 'any', terms: ['709', '律师'] })).toBeUndefined();
  });

  it('maps hits back onto the original text for replacement', () => {
    const text = '关于 习 近平 和ＸＩ的消息';
    const hits = findTerms(text, ['习近平', 'xi']);
    expect(replaceHits(text, hits, '***')).toBe('关于 *** 和***的消息');
    expect(replaceHits('a习近平b习近平c', findTerms('a习近平b习近平c', ['习近平']), '')).toBe('abc');
  });
});

import { describe, expect, it } from 'vitest';
import {
  benjaminiHochberg,
  fisherExact,
  logGamma,
  mannWhitneyGreater,
  newcombeDifference,
  normalQuantile,
  quantile,
  wilson,
} from './stats.ts';

describe('logGamma', () => {
  it('matches log factorials', () => {
    expect(logGamma(1)).toBeCloseTo(0, 12);
    expect(logGamma(11)).toBeCloseTo(Math.log(3628800), 10);
    expect(logGamma(0.5)).toBeCloseTo(Math.log(Math.sqrt(Math.PI)), 12);
    expect(logGamma(171)).toBeCloseTo(706.5730622457874, 8);
  });
});

describe('normalQuantile', () => {
  it('gives the usual critical values', () => {
    expect(normalQuantile(0.975)).toBeCloseTo(1.959964, 5);
    expect(normalQuantile(0.95)).toBeCloseTo(1.644854, 5);
    expect(normalQuantile(0.001)).toBeCloseTo(-3.090232, 5);
  });
});

describe('wilson', () => {
  it('gives the textbook 95% bounds', () => {
    const [lo0, hi0] = wilson(0, 10);
    expect(lo0).toBe(0);
    expect(hi0).toBeCloseTo(0.2775, 4);
    const [lo5, hi5] = wilson(5, 10);
    expect(lo5).toBeCloseTo(0.2366, 4);
    expect(hi5).toBeCloseTo(0.7634, 4);
    // Newcombe (1998a), example 81/263 with the Wilson score method
    const [lo, hi] = wilson(81, 263);
    expect(lo).toBeCloseTo(0.2553, 4);
    expect(hi).toBeCloseTo(0.3662, 4);
  });

  it('narrows as n grows and stays inside [0, 1]', () => {
    const [a, b] = wilson(30, 100);
    const [c, d] = wilson(300, 1000);
    expect(d - c).toBeLessThan(b - a);
    expect(wilson(10, 10)[1]).toBe(1);
  });
});

describe('newcombeDifference', () => {
  it('reproduces Newcombe (1998b) method 10 for 56/70 − 48/80', () => {
    const [lo, hi] = newcombeDifference(56, 70, 48, 80);
    expect(lo).toBeCloseTo(0.0524, 4);
    expect(hi).toBeCloseTo(0.3339, 4);
  });
});

describe('fisherExact', () => {
  it("gives Fisher's tea-tasting p-values", () => {
    const r = fisherExact(3, 1, 1, 3);
    expect(r.greater).toBeCloseTo(0.242857, 6);
    expect(r.twoSided).toBeCloseTo(0.485714, 6);
  });

  it('matches R fisher.test on an asymmetric table', () => {
    // fisher.test(matrix(c(1, 11, 9, 3), 2)): two-sided p = 0.002759, less = 0.001346
    const r = fisherExact(1, 9, 11, 3);
    expect(r.twoSided).toBeCloseTo(0.0027594, 6);
    expect(r.less).toBeCloseTo(0.0013797, 6);
    expect(r.greater).toBeCloseTo(0.9999663, 6);
  });

  it('is tiny for complete suppression and 1 for identical arms at the ceiling', () => {
    expect(fisherExact(8, 0, 0, 8).greater).toBeCloseTo(1 / 12870, 10);
    expect(fisherExact(0, 10, 0, 10).greater).toBe(1);
  });
});

describe('benjaminiHochberg', () => {
  it('reproduces the Benjamini & Hochberg (1995) worked example', () => {
    const p = [
      0.0001, 0.0004, 0.0019, 0.0095, 0.0201, 0.0278, 0.0298, 0.0344, 0.0459, 0.324, 0.4262, 0.5719, 0.6528,
      0.759, 1,
    ];
    const q = benjaminiHochberg(p);
    expect(q[0]).toBeCloseTo(0.0015, 10);
    expect(q[1]).toBeCloseTo(0.003, 10);
    expect(q[2]).toBeCloseTo(0.0095, 10);
    expect(q[3]).toBeCloseTo(0.035625, 10);
    expect(q[4]).toBeCloseTo(0.0603, 10);
    expect(q[5]).toBeCloseTo(0.0298 * (15 / 7), 10);
    expect(q.filter((v) => v <= 0.05)).toHaveLength(4);
    expect(q[14]).toBe(1);
  });

  it('keeps the input order', () => {
    expect(benjaminiHochberg([0.04, 0.01])).toEqual([0.04, 0.02]);
  });
});

describe('mannWhitneyGreater', () => {
  it('is exact for small samples without ties', () => {
    const r = mannWhitneyGreater([4, 5, 6], [1, 2, 3]);
    expect(r.method).toBe('exact');
    expect(r.u).toBe(9);
    expect(r.pGreater).toBeCloseTo(1 / 20, 12);
    // scipy.stats.mannwhitneyu(x, y, alternative='greater', method='exact'): U = 58, p = 0.0679556
    const x = [1.83, 0.5, 1.62, 2.48, 1.68, 1.88, 1.55, 3.06, 1.3];
    const y = [0.878, 0.647, 0.598, 2.05, 1.06, 1.29, 1.061, 3.14, 1.291];
    const r2 = mannWhitneyGreater(x, y);
    expect(r2.u).toBe(58);
    expect(r2.pGreater).toBeCloseTo(0.0679556, 6);
  });

  it('uses the normal approximation with ties and is not significant for equal samples', () => {
    const r = mannWhitneyGreater([1, 1, 2, 2, 3], [1, 1, 2, 2, 3]);
    expect(r.method).toBe('normal');
    expect(r.pGreater).toBeGreaterThan(0.4);
  });
});

describe('quantile', () => {
  it('interpolates like R type 7', () => {
    expect(quantile([1, 2, 3, 4], 0.5)).toBe(2.5);
    expect(quantile([10, 20, 30, 40, 50], 0.95)).toBeCloseTo(48, 10);
  });
});

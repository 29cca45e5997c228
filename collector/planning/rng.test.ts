import { describe, expect, it } from 'vitest';
import { createRng, randomUuid, shuffled } from './rng.ts';

describe('createRng', () => {
  it('repeats its stream for a seed and differs for another seed', () => {
    const a = createRng('seed');
    const b = createRng('seed');
    const c = createRng('other');
    const xs = Array.from({ length: 5 }, () => a.next());
    expect(Array.from({ length: 5 }, () => b.next())).toEqual(xs);
    expect(Array.from({ length: 5 }, () => c.next())).not.toEqual(xs);
  });

  it('draws roughly uniform values in [0, 1)', () => {
    const rng = createRng(42);
    const buckets = new Array(10).fill(0);
    let outside = 0;
    for (let i = 0; i < 100_000; i++) {
      const x = rng.next();
      if (!(x >= 0 && x < 1)) outside++;
      else buckets[Math.floor(x * 10)]++;
    }
    expect(outside).toBe(0);
    for (const n of buckets) expect(Math.abs(n - 10_000)).toBeLessThan(500);
  });

  it('shuffles into a permutation and makes UUID-shaped ids', () => {
    const rng = createRng(1);
    const xs = Array.from({ length: 50 }, (_, i) => i);
    const ys = shuffled(rng, xs);
    expect([...ys].sort((p, q) => p - q)).toEqual(xs);
    expect(ys).not.toEqual(xs);
    expect(randomUuid(rng)).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  });
});

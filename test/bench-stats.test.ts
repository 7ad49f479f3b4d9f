/** The benchmarks' statistics helpers (bench/lib/stats.mjs): nearest-rank quantiles, per set. */
import { describe, expect, it } from 'vitest';
import { quantile, setsP99 } from '../bench/lib/stats.mjs';

describe('benchmark statistics', () => {
  it('quantile is nearest-rank on a sorted copy', () => {
    const xs = [5, 1, 4, 2, 3];
    expect(quantile(xs, 0.5)).toBe(3);
    expect(quantile(xs, 1)).toBe(5);
    expect(quantile(xs, 0)).toBe(1);
    expect(xs).toEqual([5, 1, 4, 2, 3]);
    expect(quantile([], 0.5)).toBeNaN();
  });

  it('setsP99 gives each set its own p99, in order', () => {
    // 1..100 → p99 is the 99th value; 1..1000 → the 990th; a single slow sample among 200 is above the p99 rank.
    const hundred = Array.from({ length: 100 }, (_, i) => 100 - i);
    const thousand = Array.from({ length: 1000 }, (_, i) => i + 1);
    const oneSlow = [...Array.from({ length: 199 }, () => 10), 500];
    expect(setsP99([hundred, thousand, oneSlow, []])).toEqual([99, 990, 10, NaN]);
  });
});

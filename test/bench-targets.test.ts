/** The target rule of the benchmark report (bench/lib/targets.mjs): which rows pass, fail, or cannot be judged. */
import { describe, expect, it } from 'vitest';
// @ts-expect-error plain ESM bench helper without types
import { checkTarget, parseTarget, targetCell, unitKey } from '../bench/lib/targets.mjs';

describe('bench target rule', () => {
  it('reads operator, number and unit', () => {
    expect(parseTarget('≥ 0.30')).toEqual({ op: 'ge', limit: 0.3, unit: '', ratio: true });
    expect(parseTarget('<= 50 ms')).toEqual({ op: 'le', limit: 50, unit: 'ms', ratio: false });
    expect(parseTarget('≤ 0.5×')).toEqual({ op: 'le', limit: 0.5, unit: '×', ratio: true });
    expect(parseTarget('≤ 1,000 ms')?.limit).toBe(1000);
    expect(parseTarget('about 50 ms')).toBeUndefined();
    expect(parseTarget('≤ ms')).toBeUndefined();
  });

  it('a target with a unit is checked against the value, in the row unit', () => {
    expect(checkTarget({ value: 42, unit: 'ms', target: '≤ 50 ms' })).toEqual({ mark: 'pass', against: 'value' });
    expect(checkTarget({ value: 50, unit: 'ms', target: '≤ 50 ms' })?.mark).toBe('pass');
    expect(checkTarget({ value: 50.1, unit: 'ms', target: '≤ 50 ms' })?.mark).toBe('FAIL');
    expect(checkTarget({ value: 61, unit: 'MB', target: '≤ 64 MB', ratio: 20 })).toEqual({ mark: 'pass', against: 'value' });
    expect(checkTarget({ value: 310, unit: 'KiB', target: '≤ 300 KB' })?.mark).toBe('FAIL');
    expect(checkTarget({ value: 1.5, unit: '% of a core', target: '≤ 2 %' })?.mark).toBe('pass');
  });

  it('a bare number or × is a ratio target: the ratio when the row has one, else a × value', () => {
    expect(checkTarget({ value: 9000, unit: 'hb/s', ratio: 0.31, target: '≥ 0.30' })).toEqual({ mark: 'pass', against: 'ratio' });
    expect(checkTarget({ value: 9000, unit: 'hb/s', ratio: 0.29, target: '≥ 0.30' })?.mark).toBe('FAIL');
    expect(checkTarget({ value: 0.4, unit: '×', target: '≤ 0.5×' })).toEqual({ mark: 'pass', against: 'value' });
    expect(checkTarget({ value: 0.6, unit: 'x', target: '≤ 0.5' })?.mark).toBe('FAIL');
  });

  it('cannot judge what does not compare, and says why', () => {
    expect(checkTarget({ value: 40, unit: 's', target: '≤ 50 ms' })).toMatchObject({ mark: 'n/a', reason: expect.stringContaining('unit') });
    expect(checkTarget({ value: 'failed', unit: 'ms', target: '≤ 50 ms' })).toMatchObject({ mark: 'n/a' });
    expect(checkTarget({ value: 40, unit: 'ms', target: '≥ 0.3' })).toMatchObject({ mark: 'n/a', reason: expect.stringContaining('ratio') });
    expect(checkTarget({ value: 40, unit: 'ms', target: 'fast' })).toMatchObject({ mark: 'n/a' });
    expect(checkTarget({ value: 40, unit: 'ms' })).toBeUndefined();
  });

  it('a lower bound passes only a ≥ target and fails only a ≤ target', () => {
    expect(checkTarget({ value: 0, unit: 'x', ratio: 3, lower_bound: true, target: '≥ 2' })?.mark).toBe('pass');
    expect(checkTarget({ value: 0, unit: 'x', ratio: 1, lower_bound: true, target: '≥ 2' })?.mark).toBe('n/a');
    expect(checkTarget({ value: 0, unit: 'x', ratio: 3, lower_bound: true, target: '≤ 2' })?.mark).toBe('FAIL');
    expect(checkTarget({ value: 0, unit: 'x', ratio: 1, lower_bound: true, target: '≤ 2' })?.mark).toBe('n/a');
  });

  it('units fold binary and decimal byte prefixes and take the first word', () => {
    expect(unitKey('MiB')).toBe('mb');
    expect(unitKey('KiB')).toBe(unitKey('KB'));
    expect(unitKey('% of a core')).toBe('%');
    expect(targetCell({ value: 30, unit: 'ms', target: '≤ 50 ms' })).toBe('≤ 50 ms: pass');
    expect(targetCell({ value: 1, unit: 'x', ratio: 0.2, target: '≤ 0.5×' })).toBe('≤ 0.5× (ratio): pass');
  });
});

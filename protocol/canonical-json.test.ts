import { describe, expect, it } from 'vitest';
import { canonicalJson } from './canonical-json.js';

describe('canonicalJson (RFC 8785)', () => {
  it.each([
    ['sorts keys by UTF-16 code units', { b: 1, a: 2, A: 3, '\u00e9': 4, '\ud83d\ude00': 5, '\ufb33': 6 }, '{"A":3,"a":2,"b":1,"\u00e9":4,"\ud83d\ude00":5,"\ufb33":6}'],
    ['nested objects and arrays keep array order', { z: [3, 1, { y: 1, x: 2 }], a: {} }, '{"a":{},"z":[3,1,{"x":2,"y":1}]}'],
    ['numbers in ES6 shortest form', [1.0, -0, 1e21, 1e-7, 0.1 + 0.2, 123456789012345680000], '[1,0,1e+21,1e-7,0.30000000000000004,123456789012345680000]'],
    ['escapes only what JSON requires', { s: '\u0000\u001f"\\/\u2028é' }, '{"s":"\\u0000\\u001f\\"\\\\/\u2028é"}'],
    ['literals', [true, false, null], '[true,false,null]'],
    ['no whitespace', { a: [1, 2], b: 'x y' }, '{"a":[1,2],"b":"x y"}'],
  ])('%s', (_name, value, expected) => {
    expect(canonicalJson(value)).toBe(expected);
  });

  it('is stable under key insertion order', () => {
    expect(canonicalJson({ a: 1, b: { d: 1, c: 2 } })).toBe(canonicalJson({ b: { c: 2, d: 1 }, a: 1 }));
  });

  it('rejects values JSON cannot represent', () => {
    expect(() => canonicalJson(undefined)).toThrow();
    expect(() => canonicalJson(Number.NaN)).toThrow();
    expect(() => canonicalJson(Infinity)).toThrow();
  });
});

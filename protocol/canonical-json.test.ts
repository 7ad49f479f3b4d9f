import { describe, expect, it } from 'vitest';
import canonicalize from 'canonicalize';
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

/** Deterministic pseudo-random values (xorshift), so a failure names a seed that reproduces it. */
function rng(seed: number) {
  let x = seed | 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 2 ** 32;
  };
}

const NUMBERS = [0, -0, 1, -1, 1e21, 1e-7, 1e-6, 1e20, 123456789012345680000, 5e-324, Number.MAX_VALUE, -Number.MAX_VALUE, Number.MAX_SAFE_INTEGER, 0.1 + 0.2, 333333333.33333329, 1e23, 2 ** 53 + 2, 4.35, 0.000001, 1.5e-9, -1e-300];
const STRINGS = ['', 'a', 'é', '\u00e9', 'e\u0301', '\ud83d\ude00', '\ufb33', '\u2028\u2029', '\u0000\u001f\u007f', '"\\/', '日本語', 'tab\tnew\nline', 'A', 'a', 'b', '10', '2', '__proto__', 'constructor'];

function randomValue(r: () => number, depth: number): unknown {
  const pick = r();
  if (depth > 4 || pick < 0.45) {
    const p = r();
    if (p < 0.3) return NUMBERS[Math.floor(r() * NUMBERS.length)];
    if (p < 0.4) return (r() - 0.5) * 10 ** Math.floor(r() * 40 - 20);
    if (p < 0.75) return STRINGS[Math.floor(r() * STRINGS.length)]! + String.fromCodePoint(Math.floor(r() * 0x2ffff) % 0xd800);
    if (p < 0.85) return r() < 0.5;
    return null;
  }
  if (pick < 0.7) return Array.from({ length: Math.floor(r() * 5) }, () => randomValue(r, depth + 1));
  const o: Record<string, unknown> = {};
  const n = Math.floor(r() * 6);
  for (let i = 0; i < n; i++) o[STRINGS[Math.floor(r() * STRINGS.length)]! + (r() < 0.3 ? String(Math.floor(r() * 20)) : '')] = randomValue(r, depth + 1);
  return o;
}

describe('canonicalJson is byte-identical to the canonicalize package', () => {
  const reference = (v: unknown) => {
    try {
      return { text: canonicalize(v) };
    } catch (err) {
      return { error: (err as Error).message };
    }
  };
  const ours = (v: unknown) => {
    try {
      return { text: canonicalJson(v) };
    } catch (err) {
      return { error: (err as Error).message };
    }
  };

  it('on a corpus of edge cases (unicode keys, numbers, nesting, toJSON, undefined members, lone surrogates, cycles)', () => {
    const cyclic: Record<string, unknown> = { a: 1 };
    cyclic.self = cyclic;
    const shared = { x: 1 };
    const corpus: unknown[] = [
      null, true, false, 0, -0, 1e21, 1e-7, 5e-324, Number.MAX_VALUE, 'plain', '', [], {}, [[[]]], [[1, [2, [3]]], []],
      ...NUMBERS, ...STRINGS, NUMBERS, STRINGS,
      Object.fromEntries(STRINGS.map((s, i) => [s, i])),
      { '10': 1, '2': 2, '1': 3, b: 4, a: 5, '': 6, '\ud83d\ude00': 7, '\ufb33': 8 },
      { a: undefined, b: () => 1, c: Symbol('s'), d: 1 },
      [undefined, () => 1, Symbol('s'), 1],
      // eslint-disable-next-line no-sparse-arrays
      [1, , 3],
      new Date(Date.UTC(2026, 11, 3, 19, 0, 0, 5)),
      { at: new Date(0), nested: { toJSON: () => ({ z: 1, a: [1, 'x'] }) } },
      { shared, again: shared, list: [shared, shared] },
      { envelope: { v: 1, seq: 123456, kind: 'heartbeat', node_id: 'node-1', body: { metrics: { load: [0.1, 0.25, 1e-7], mem: -0 }, hostname: 'h\u00e9' } } },
      'lone \ud800 high', 'lone \udc00 low', '\ud83d', { '\udc00': 1 }, [['\ud800']],
      Number.NaN, Infinity, -Infinity, [Number.NaN], { n: Infinity },
      cyclic, [cyclic],
    ];
    for (const v of corpus) expect(ours(v), String(reference(v).text ?? reference(v).error)).toEqual(reference(v));
    expect(ours(undefined)).toEqual({ error: 'value has no JSON representation' });
    expect(() => canonicalJson(10n)).toThrow(TypeError);
    expect(() => canonicalize(10n)).toThrow(TypeError);
  });

  it('on objects of 0 to 40 keys (sorted by insertion up to 16, by Array#sort beyond)', () => {
    const r = rng(7);
    for (let n = 0; n <= 40; n++) {
      for (let round = 0; round < 20; round++) {
        const o: Record<string, unknown> = {};
        for (let i = 0; i < n; i++) {
          const key = STRINGS[Math.floor(r() * STRINGS.length)]! + String.fromCodePoint(Math.floor(r() * 0x2ffff) % 0xd800) + (r() < 0.3 ? String(Math.floor(r() * 100)) : '');
          o[key] = i;
        }
        expect(ours(o), `${n} keys, round ${round}`).toEqual(reference(o));
      }
    }
  });

  it('on 3,000 random JSON values', () => {
    for (let seed = 1; seed <= 3000; seed++) {
      const v = randomValue(rng(seed), 0);
      const want = reference(v);
      expect(ours(v), `seed ${seed}`).toEqual(want);
      // And what it writes reads back as the same value.
      if (want.text !== undefined) expect(canonicalJson(JSON.parse(want.text))).toBe(want.text);
    }
  });
});

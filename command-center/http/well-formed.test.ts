import { describe, expect, it } from 'vitest';
import { illFormedStringPath, illFormedStringPathOfJson } from './well-formed.js';

const check = (text: string) => illFormedStringPathOfJson(text, JSON.parse(text));

describe('illFormedStringPathOfJson', () => {
  it('finds a lone surrogate escape in a value, an array element and a key, in either case', () => {
    expect(check('{"a":"\\uD800"}')).toBe('a');
    expect(check('{"a":{"b":["x","y\\udc00z"]}}')).toBe('a.b.1');
    expect(check('{"ok":1,"k\\uDBFF":1}')).toBe('k\ufffd');
  });

  it('gives the walk\'s answer for every surrogate code unit', () => {
    for (let u = 0xd800; u <= 0xdfff; u++) {
      const text = JSON.stringify({ n: [1, { s: String.fromCharCode(u) }] });
      expect(check(text)).toBe('n.1.s');
      expect(check(text.replace(/\\u([0-9a-f]{4})/g, (_, hex: string) => `\\u${hex.toUpperCase()}`))).toBe('n.1.s');
    }
  });

  it('accepts a surrogate pair written as escapes and an escaped backslash before "ud800"', () => {
    expect(check('{"emoji":"\\ud83d\\ude00"}')).toBeUndefined();
    expect(check('{"path":"C:\\\\ud800"}')).toBeUndefined();
    expect(JSON.parse('{"path":"C:\\\\ud800"}').path).toBe('C:\\ud800');
  });

  it('leaves text without a surrogate escape unwalked', () => {
    // A value the walk would refuse, paired with text that cannot have produced it: the text decides.
    expect(illFormedStringPath({ s: '\ud800' })).toBe('s');
    expect(illFormedStringPathOfJson('{"s":"x"}', { s: '\ud800' })).toBeUndefined();
    expect(check('{"hostname":"web-01","metrics":{"load":[0.1,0.2]},"note":"\\u00e9\\u4e2d"}')).toBeUndefined();
  });
});

/**
 * RFC 8785 (JSON Canonicalization Scheme). Every signature and every journal line in VaultMesh is made over these
 * bytes, so the output is held byte-identical to the maintained `canonicalize` package (canonical-json.test.ts
 * checks both over a corpus and random values, unicode, lone surrogates, edge numbers and nested arrays included).
 * This writer exists because that one was ≈ 5 % of the center's main thread at ingest (it canonicalises every
 * journal line): it builds one string in a single pass instead of an array of parts per object and per array,
 * checks strings with `isWellFormed` instead of a character loop, and tracks cycles on a small stack.
 */

const NAN = 'NaN is not allowed';
const INFINITE = 'Infinity is not allowed';
const LONE = 'Lone surrogate is not allowed';
const CIRCULAR = 'Circular reference detected';

type WellFormed = string & { isWellFormed(): boolean };

/** A JSON string literal; RFC 8785 has no form for ill-formed UTF-16, so a lone surrogate throws. */
function quote(s: string): string {
  if (!(s as WellFormed).isWellFormed()) throw new Error(LONE);
  return JSON.stringify(s);
}

/**
 * `"key":` for a member. Envelopes repeat a small set of keys, so their quoted forms are kept instead of two new
 * strings per member: the first 1,024 keys of up to 64 characters (bodies choose keys too, so the memory is bounded
 * by both; other keys are quoted each time).
 */
const members = new Map<string, string>();
function member(k: string): string {
  let m = members.get(k);
  if (m === undefined) {
    m = quote(k) + ':';
    if (k.length <= 64 && members.size < 1024) members.set(k, m);
  }
  return m;
}

/**
 * Own enumerable keys in UTF-16 code-unit order (what `Array#sort` does to strings, and `<` compares). A small key set,
 * nearly every object of an envelope, is sorted in place by insertion: `Array#sort` copies into a work array on every
 * call, which was the largest allocation of a journal line after the line itself.
 */
function sortedKeys(o: object): string[] {
  const keys = Object.keys(o);
  if (keys.length > 16) return keys.sort();
  for (let i = 1; i < keys.length; i++) {
    const k = keys[i]!;
    let j = i - 1;
    for (; j >= 0 && keys[j]! > k; j--) keys[j + 1] = keys[j]!;
    keys[j + 1] = k;
  }
  return keys;
}

/**
 * `undefined` where JSON has no representation (undefined, functions, symbols at the top), as `canonicalize` does.
 * Member values that are undefined or symbols are left out; array elements that are become null.
 */
function write(v: unknown, stack: object[]): string | undefined {
  switch (typeof v) {
    case 'string':
      return quote(v);
    case 'number':
      if (v !== v) throw new Error(NAN);
      if (v === Infinity || v === -Infinity) throw new Error(INFINITE);
      return JSON.stringify(v);
    case 'object':
      break;
    default:
      // booleans; undefined, functions and symbols (undefined); BigInt throws as in JSON.stringify.
      return JSON.stringify(v);
  }
  if (v === null) return 'null';
  const o = v as Record<string, unknown> & { toJSON?: unknown };
  if (stack.includes(o)) throw new Error(CIRCULAR);
  stack.push(o);
  let out: string;
  if (typeof o.toJSON === 'function') {
    out = write((o.toJSON as () => unknown)(), stack) as string;
  } else if (Array.isArray(o)) {
    out = '[';
    for (let i = 0; i < o.length; i++) {
      if (i > 0) out += ',';
      // A hole stays empty, and so does an element JSON cannot represent (a function), as Array#join writes them.
      if (!(i in o)) continue;
      const e: unknown = o[i];
      out += e === undefined || typeof e === 'symbol' ? 'null' : (write(e, stack) ?? '');
    }
    out += ']';
  } else {
    const keys = sortedKeys(o);
    out = '{';
    let first = true;
    for (let i = 0; i < keys.length; i++) {
      const k = keys[i]!;
      const e = o[k];
      if (e === undefined || typeof e === 'symbol') continue;
      if (!first) out += ',';
      first = false;
      out += member(k) + write(e, stack);
    }
    out += '}';
  }
  stack.pop();
  return out;
}

/** Canonical JSON text of `value` (RFC 8785). Throws on values JSON cannot represent (undefined at top, BigInt, NaN). */
export function canonicalJson(value: unknown): string {
  const text = write(value, []);
  if (text === undefined) throw new TypeError('value has no JSON representation');
  return text;
}

/** UTF-8 bytes of the canonical JSON of `value`. */
export function canonicalBytes(value: unknown): Buffer {
  return Buffer.from(canonicalJson(value), 'utf8');
}

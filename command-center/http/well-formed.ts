/**
 * Ill-formed UTF-16 in parsed JSON. `JSON.parse` accepts `"\ud800"` (a lone surrogate) but such a string has no
 * UTF-8 form: canonical JSON refuses it, so it could never be journaled or signed. Every JSON body is checked here,
 * once, right after parsing, so no route can let one through to the journal.
 */

const wellFormed = (s: string): boolean => (s as string & { isWellFormed(): boolean }).isWellFormed();

/**
 * The dotted path of the first string (value or object key) that is not well-formed UTF-16, or undefined when all
 * are. Iterative: bodies nest as deep as the JSON parser allowed, deeper than the call stack.
 */
export function illFormedStringPath(value: unknown): string | undefined {
  const stack: Array<{ v: unknown; path: string }> = [{ v: value, path: '' }];
  const join = (path: string, key: string | number) => (path ? `${path}.${key}` : String(key));
  while (stack.length) {
    const { v, path } = stack.pop()!;
    if (typeof v === 'string') {
      if (!wellFormed(v)) return path;
    } else if (Array.isArray(v)) {
      for (let i = v.length - 1; i >= 0; i--) stack.push({ v: v[i], path: join(path, i) });
    } else if (v !== null && typeof v === 'object') {
      const keys = Object.keys(v);
      for (let i = keys.length - 1; i >= 0; i--) {
        const k = keys[i]!;
        if (!wellFormed(k)) return join(path, k.replace(/[\ud800-\udfff]/g, '\ufffd'));
        stack.push({ v: (v as Record<string, unknown>)[k], path: join(path, k) });
      }
    }
  }
  return undefined;
}

/** A JSON `\u` escape of a UTF-16 surrogate code unit (U+D800-U+DFFF), in either case. */
const SURROGATE_ESCAPE = /\\u[dD][89a-fA-F]/;

/**
 * `illFormedStringPath(value)` for a value just parsed from `text`, where `text` is itself well-formed (a fatal
 * UTF-8 decode makes it so). Such text can carry a lone surrogate into the value only as a `\u` escape of one, so
 * text without a surrogate escape (every agent's body) is not walked. The test is conservative: a surrogate pair
 * written as escapes, or an escaped backslash before "ud800", only costs the walk.
 */
export function illFormedStringPathOfJson(text: string, value: unknown): string | undefined {
  return SURROGATE_ESCAPE.test(text) ? illFormedStringPath(value) : undefined;
}

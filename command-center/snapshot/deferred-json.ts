/**
 * Fields of a record loaded from a state snapshot that are kept as their JSON text until something reads them. A
 * command record's signed command and receipt are ≈ 30 small objects each; most records are closed and never read
 * again, so parsing them at start-up (and promoting them out of the young generation) was most of the commands' load
 * cost. Reading such a field parses it once and turns it back into a plain data property, so every reader sees the
 * same value a full replay builds; assigning it replaces the text.
 */

/** Texts not parsed yet, per record and field; a record leaves the map when it is collected. */
const pending = new WeakMap<object, Record<string, string>>();

/**
 * One getter and setter per field name, shared by every record: records with the same deferred fields then share
 * their hidden class (a closure per record would give each its own).
 */
const accessors = new Map<string, PropertyDescriptor>();

function settle(obj: object, key: string, value: unknown): void {
  Object.defineProperty(obj, key, { value, writable: true, enumerable: true, configurable: true });
  const texts = pending.get(obj);
  if (texts) delete texts[key];
}

function accessorFor(key: string): PropertyDescriptor {
  let d = accessors.get(key);
  if (!d) {
    d = {
      enumerable: true,
      configurable: true,
      get(this: object) {
        const text = pending.get(this)?.[key];
        const value: unknown = text === undefined ? undefined : JSON.parse(text);
        settle(this, key, value);
        return value;
      },
      set(this: object, value: unknown) {
        settle(this, key, value);
      },
    };
    accessors.set(key, d);
  }
  return d;
}

/**
 * A copy of `obj` (its own keys, in their order) in which each of `keys` that holds a string is the value that JSON
 * text stands for, parsed on first read. The copy is built with the accessors in place: turning an existing data
 * property into an accessor would drop the object to slow (dictionary) properties, ≈ 3× the cost at load.
 */
export function withDeferredJson<T extends object>(obj: T, keys: readonly string[]): T {
  const copy: Record<string, unknown> = {};
  let texts: Record<string, string> | undefined;
  for (const k in obj) {
    const v: unknown = obj[k];
    if (typeof v === 'string' && keys.includes(k)) {
      (texts ??= {})[k] = v;
      Object.defineProperty(copy, k, accessorFor(k));
    } else copy[k] = v;
  }
  if (texts) pending.set(copy, texts);
  return copy as T;
}

/**
 * The field's JSON text when it was never read nor assigned since `withDeferredJson` (a capture writes it back as it is,
 * without parsing it); undefined otherwise. Never triggers the parse.
 */
export function deferredJsonText(obj: object, key: string): string | undefined {
  return pending.get(obj)?.[key];
}

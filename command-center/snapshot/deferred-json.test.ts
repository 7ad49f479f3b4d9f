import { describe, expect, it } from 'vitest';
import { deferredJsonText, withDeferredJson } from './deferred-json.js';

describe('deferred JSON fields', () => {
  it('a deferred field reads as its parsed value, once, then is a plain property; other fields and key order are kept', () => {
    const signed = { payload: { id: 'c1', args: { unit: 'a"b\\c' } }, signature: 'ff' };
    const rec = withDeferredJson({ id: 'c1', signed: JSON.stringify(signed), status: 'queued', receipt: undefined }, ['signed', 'receipt']);
    expect(Object.keys(rec)).toEqual(['id', 'signed', 'status', 'receipt']);
    expect(deferredJsonText(rec, 'signed')).toBe(JSON.stringify(signed));
    expect(deferredJsonText(rec, 'receipt')).toBeUndefined();
    const first = rec.signed as unknown;
    expect(first).toEqual(signed);
    expect(rec.signed).toBe(first); // parsed once
    expect(deferredJsonText(rec, 'signed')).toBeUndefined();
    expect(Object.getOwnPropertyDescriptor(rec, 'signed')).toMatchObject({ value: signed, writable: true, enumerable: true });
    expect(JSON.parse(JSON.stringify(rec))).toEqual({ id: 'c1', signed, status: 'queued' });
  });

  it('assigning a deferred field replaces its text without parsing it', () => {
    const rec = withDeferredJson({ signed: '{"a":1}' }, ['signed']) as { signed: unknown };
    rec.signed = { b: 2 };
    expect(rec.signed).toEqual({ b: 2 });
    expect(deferredJsonText(rec, 'signed')).toBeUndefined();
  });
});

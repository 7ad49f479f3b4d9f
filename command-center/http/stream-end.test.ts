import { describe, expect, it } from 'vitest';
import { announceStreamEnd, whenStreamEnds } from './stream-end.js';

describe('stream end announcements', () => {
  it('runs each listener once when the owner announces the end, and at once after it', () => {
    const body = new ReadableStream<Uint8Array>();
    const end = announceStreamEnd(body);
    const calls: string[] = [];
    expect(whenStreamEnds(body, () => calls.push('a'))).toBe(true);
    expect(whenStreamEnds(body, () => calls.push('b'))).toBe(true);
    expect(calls).toEqual([]);
    end();
    end();
    expect(calls).toEqual(['a', 'b']);
    expect(whenStreamEnds(body, () => calls.push('late'))).toBe(true);
    expect(calls).toEqual(['a', 'b', 'late']);
  });

  it('is keyed by the body: a rebuilt Response keeps it, another stream does not announce', () => {
    const body = new ReadableStream<Uint8Array>();
    announceStreamEnd(body);
    const rebuilt = new Response(body, { headers: { 'x-a': '1' } });
    expect(rebuilt.body).toBe(body);
    expect(whenStreamEnds(rebuilt.body!, () => undefined)).toBe(true);
    let ran = false;
    expect(whenStreamEnds(new ReadableStream<Uint8Array>(), () => (ran = true))).toBe(false);
    expect(ran).toBe(false);
  });
});

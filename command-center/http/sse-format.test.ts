import { describe, expect, it } from 'vitest';
import { formatSseComment, formatSseMessage } from './sse-format.js';

describe('formatSseMessage', () => {
  it.each([
    [{ data: 'x' }, 'data: x\n\n'],
    [{ event: 'heartbeat', id: 42, data: '{"a":1}' }, 'event: heartbeat\nid: 42\ndata: {"a":1}\n\n'],
    [{ data: 'a\nb\r\nc\rd' }, 'data: a\ndata: b\ndata: c\ndata: d\n\n'],
    [{ data: '', retry: 2000 }, 'retry: 2000\ndata: \n\n'],
  ])('%j', (msg, expected) => expect(formatSseMessage(msg)).toBe(expected));

  it('refuses CR/LF in event names and ids (field injection)', () => {
    expect(() => formatSseMessage({ event: 'a\ndata: evil', data: 'x' })).toThrow(TypeError);
    expect(() => formatSseMessage({ id: '1\r2', data: 'x' })).toThrow(TypeError);
  });

  it('formats comments on one line', () => {
    expect(formatSseComment('keep\nalive')).toBe(': keep alive\n\n');
  });
});

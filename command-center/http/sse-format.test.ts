import { describe, expect, it } from 'vitest';
import { envelopeEventBytes, formatSseComment, formatSseMessage } from './sse-format.js';
import { createEventBus } from './event-bus.js';
import type { Envelope } from '../../protocol/envelope.js';

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

describe('envelopeEventBytes', () => {
  const env = (seq: number, text = 'x'): Envelope => ({ v: 1, seq, id: `e${seq}`, ts: '2026-11-01T00:00:00.000Z', kind: 'note', author: 'operator:a', node_id: 'n1', body: { text } }) as Envelope;

  it('is the UTF-8 of the formatted message, computed once per envelope object', () => {
    const e = env(7, 'line one\nline two ü');
    const bytes = envelopeEventBytes(e);
    expect(Buffer.from(bytes).toString('utf8')).toBe(formatSseMessage({ event: 'note', id: 7, data: JSON.stringify(e) }));
    expect(envelopeEventBytes(e)).toBe(bytes); // the same bytes for every stream
    // An equal but distinct object is its own entry (the cache is by identity, not by content).
    expect(envelopeEventBytes(env(7, 'line one\nline two ü'))).not.toBe(bytes);
  });

  it('a subscriber can take what queued up behind the next envelope, in order, without waiting', async () => {
    const bus = createEventBus({ retain: 16 });
    const { sub } = bus.subscribe();
    for (let i = 1; i <= 5; i++) bus.publish(env(i));
    expect(((await sub.next()) as Envelope).seq).toBe(1);
    expect(sub.takeQueued(2).map((e) => e.seq)).toEqual([2, 3]);
    expect(sub.takeQueued(10).map((e) => e.seq)).toEqual([4, 5]);
    expect(sub.takeQueued(10)).toEqual([]);
    bus.close();
  });

  it('takeOne takes the oldest queued envelope, in order with takeQueued, and undefined when none is queued', () => {
    const bus = createEventBus({ retain: 16 });
    const { sub } = bus.subscribe();
    expect(sub.takeOne()).toBeUndefined();
    for (let i = 1; i <= 4; i++) bus.publish(env(i));
    expect(sub.takeOne()!.seq).toBe(1);
    expect(sub.queued).toBe(3);
    expect(sub.takeQueued(2).map((e) => e.seq)).toEqual([2, 3]);
    expect(sub.takeOne()!.seq).toBe(4);
    expect(sub.takeOne()).toBeUndefined();
    bus.publish(env(5));
    expect(sub.takeOne()!.seq).toBe(5);
    bus.close();
  });
});

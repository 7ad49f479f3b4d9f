import { describe, expect, it } from 'vitest';
import { parseJournalLine, scanEnvelopeLine, ScannedEnvelope } from './index.js';

const canonical = (o: unknown): Buffer => Buffer.from(JSON.stringify(o));
const base = { author: 'node:web-01', body: { metrics: { cpu_pct: 1.5 }, note: 'a "quoted" \\ text \u00e9\u2028' }, id: 'hb-1', kind: 'heartbeat', node_id: 'web-01', seq: 7, ts: '2026-11-01T00:00:30.000Z', v: 1 };

describe('scanEnvelopeLine', () => {
  it('reads seq, kind, node and time from the bytes and the rest on demand, as JSON.parse gives them', () => {
    const line = canonical(base);
    const env = scanEnvelopeLine(line)!;
    expect(env).toBeInstanceOf(ScannedEnvelope);
    expect([env.seq, env.kind, env.node_id, env.ts]).toEqual([7, 'heartbeat', 'web-01', '2026-11-01T00:00:30.000Z']);
    expect(env.toJSON()).toEqual(JSON.parse(line.toString()));
    expect([env.id, env.author, env.v, env.body]).toEqual([base.id, base.author, 1, base.body]);
  });

  it('gives no node_id when the line has none, and decodes escaped values exactly', () => {
    const { node_id: _n, ...noNode } = base;
    expect('node_id' in scanEnvelopeLine(canonical(noNode))!).toBe(false);
    const escaped = Buffer.from(canonical(base).toString().replace('"kind":"heartbeat"', '"kind":"heart\\u0062eat"'));
    expect(scanEnvelopeLine(escaped)!.kind).toBe('heartbeat');
    expect(scanEnvelopeLine(Buffer.from(' \t' + canonical(base).toString() + ' '))!.seq).toBe(7);
    expect(scanEnvelopeLine(Buffer.from(canonical(base).toString().replace('"seq":7', '"seq":7.0')))!.seq).toBe(7);
  });

  // Every line it accepts, JSON.parse accepts with the same envelope; what it refuses goes to JSON.parse.
  const variants: Record<string, string> = {
    'not JSON': '{"this is": not json',
    'a torn line': canonical(base).toString().slice(0, 40),
    'trailing garbage': canonical(base).toString() + 'x',
    'a trailing comma': canonical(base).toString().replace('"v":1}', '"v":1,}'),
    'a bad escape': canonical(base).toString().replace('quoted', 'quo\\xted'),
    'a raw control character': canonical(base).toString().replace('quoted', 'quo\u0001ted'),
    'a leading zero': canonical(base).toString().replace('"cpu_pct":1.5', '"cpu_pct":01.5'),
    'a bare fraction': canonical(base).toString().replace('"cpu_pct":1.5', '"cpu_pct":1.'),
    'a bad literal': canonical(base).toString().replace('"cpu_pct":1.5', '"cpu_pct":tru'),
    'an array': '[1,2]',
    'v 2': canonical({ ...base, v: 2 }).toString(),
    'seq 0': canonical({ ...base, seq: 0 }).toString(),
    'seq not an integer': canonical({ ...base, seq: 1.5 }).toString(),
    'no author': canonical({ ...base, author: undefined }).toString(),
    'a body array': canonical({ ...base, body: [] }).toString(),
    'a body null': canonical({ ...base, body: null }).toString(),
    'a numeric node': canonical({ ...base, node_id: 5 }).toString(),
    'a repeated key (the last wins)': canonical(base).toString().replace('"seq":7', '"seq":7,"seq":9'),
    'deep nesting': canonical({ ...base, body: { deep: JSON.parse('['.repeat(300) + ']'.repeat(300)) } }).toString(),
    'literals and exponents': canonical({ ...base, body: { a: true, b: false, c: null, d: -1.5e-3, e: 2e10, f: [], g: {} } }).toString(),
  };
  for (const [name, text] of Object.entries(variants)) {
    it(`agrees with JSON.parse and looksLikeEnvelope: ${name}`, () => {
      const line = Buffer.from(text);
      const full = parseJournalLine(line);
      const scanned = scanEnvelopeLine(line);
      if (scanned) {
        expect(typeof full).toBe('object');
        expect(scanned.toJSON()).toEqual(full);
        expect(scanned.seq).toBe((full as { seq: number }).seq);
      } else if (typeof full === 'object') {
        // Valid, but in a form the byte check leaves to JSON.parse (the merge then uses JSON.parse's envelope).
        expect(name).toBe('deep nesting');
      }
    });
  }
});

import { describe, expect, it } from 'vitest';
import type { Envelope } from '../../protocol/envelope.js';
import { createCommandActionMemo, formatHuman, sanitize, summarize } from './format.js';
import { heartbeatBody } from '../../test/helpers.js';

const env = (over: Partial<Envelope>): Envelope => ({
  v: 1,
  id: 'e1',
  seq: 42,
  ts: '2026-11-20T11:00:00.000Z',
  kind: 'note',
  author: 'op',
  body: {},
  ...over,
});

describe('summarize', () => {
  // The texts themselves are protocol/describe.ts's (tested there on a real center's log); here: the CLI uses them.
  it.each<[string, Partial<Envelope>, string]>([
    ['heartbeat', { kind: 'heartbeat', body: heartbeatBody('web-01') }, 'heartbeat from web-01.example: load 0.10, mem 25%, disk 10%, up 20m 34s'],
    ['incident', { kind: 'incident', body: { severity: 'high', title: 'disk full', status: 'open' } }, 'incident (high): disk full'],
    ['note', { kind: 'note', body: { text: 'rebooted' } }, 'note: rebooted'],
    ['unknown kind', { kind: 'weird', body: { a: 1 } }, 'weird: {"a":1}'],
    ['odd shapes', { kind: 'scan', body: { findings: 'nope' } }, 'scan: {"findings":"nope"}'],
  ])('%s', (_name, over, expected) => {
    expect(summarize(env(over))).toBe(expected);
  });

  it('names a command in its later steps once its issued line was seen', () => {
    const memo = createCommandActionMemo(2);
    const issued = (id: string, action: string) => env({ kind: 'command', body: { event: 'issued', command_id: id, action } });
    const delivered = (id: string) => env({ kind: 'command', body: { event: 'delivered', command_id: id, status: 'delivered', attempt: 1 } });
    memo.see(issued('c1', 'ping'));
    expect(summarize(delivered('c1'), memo.context)).toBe('command ping delivered');
    memo.see(issued('c2', 'service-status'));
    memo.see(issued('c3', 'sovereign-scan'));
    // Bounded: the oldest is forgotten, its id stands in.
    expect(summarize(delivered('c1'), memo.context)).toBe('command c1 delivered');
    expect(summarize(delivered('c3'), memo.context)).toBe('command sovereign-scan delivered');
  });
});

describe('formatHuman', () => {
  it('aligns columns without colour', () => {
    expect(formatHuman(env({ node_id: 'web-01', body: { text: 'hello' } }), { colour: false })).toBe(
      '2026-11-20T11:00:00.000Z        42  note        web-01            op                note: hello',
    );
    expect(formatHuman(env({}), { colour: false })).toBe('2026-11-20T11:00:00.000Z        42  note        -                 op                note');
  });

  it('colours only when asked', () => {
    const plain = formatHuman(env({ kind: 'incident', body: { severity: 'critical', title: 'x', status: 'open' } }), { colour: false });
    const coloured = formatHuman(env({ kind: 'incident', body: { severity: 'critical', title: 'x', status: 'open' } }), { colour: true });
    expect(plain).not.toContain('\u001b[');
    expect(coloured).toContain('\u001b[31m');
    expect(coloured).toContain('\u001b[1;31mincident (critical): x\u001b[0m');
  });

  it('neutralises terminal escapes from journal text', () => {
    expect(sanitize('a\u001b[2Jb\nc')).toBe('a\\x1b[2Jb c');
    expect(formatHuman(env({ body: { text: '\u001b]0;pwned\u0007' } }), { colour: false })).not.toMatch(/[\u0000-\u001f]/);
  });

  it('truncates long summaries', () => {
    const line = formatHuman(env({ body: { text: 'x'.repeat(500) } }), { colour: false });
    expect(line.endsWith('…')).toBe(true);
    expect(line.length).toBeLessThan(260);
  });
});

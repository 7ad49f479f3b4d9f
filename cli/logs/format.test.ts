import { describe, expect, it } from 'vitest';
import type { Envelope } from '../../protocol/envelope.js';
import { formatHuman, sanitize, summarize } from './format.js';

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
  it.each<[string, Partial<Envelope>, string]>([
    ['heartbeat', { kind: 'heartbeat', body: { hostname: 'web-01', metrics: { mem_pct: 40.25, cpu_pct: 12, uptime_s: 99, label: 'x' } } }, 'web-01 cpu_pct=12 mem_pct=40.3 uptime_s=99'],
    ['heartbeat without metrics', { kind: 'heartbeat', body: { hostname: 'h' } }, 'h'],
    [
      'scan',
      {
        kind: 'scan',
        body: {
          findings: [
            { check: 'ssh', severity: 'low', title: 'banner' },
            { check: 'fw', severity: 'critical', title: 'firewall off' },
            { check: 'x', severity: 'low', title: 'y' },
          ],
        },
      },
      '3 findings (1 critical, 2 low): firewall off',
    ],
    ['clean scan', { kind: 'scan', body: { findings: [], summary: 'all good' } }, 'all good'],
    ['command', { kind: 'command', body: { signed: { payload: { id: 'c1', node_id: 'n', action: 'restart-agent' }, signature: 'ab', key_id: 'k' } } }, 'restart-agent id=c1'],
    ['receipt', { kind: 'receipt', body: { command_id: 'c1', status: 'failed', error: 'boom' } }, 'failed command=c1 boom'],
    ['incident', { kind: 'incident', body: { severity: 'high', title: 'disk full' } }, '[high] disk full'],
    ['note', { kind: 'note', body: { text: 'rebooted' } }, 'rebooted'],
    ['unknown kind', { kind: 'weird', body: { a: 1 } }, '{"a":1}'],
    ['odd shapes', { kind: 'scan', body: { findings: 'nope' } }, 'no findings'],
  ])('%s', (_name, over, expected) => {
    expect(summarize(env(over))).toBe(expected);
  });
});

describe('formatHuman', () => {
  it('aligns columns without colour', () => {
    expect(formatHuman(env({ node_id: 'web-01', body: { text: 'hello' } }), { colour: false })).toBe(
      '2026-11-20T11:00:00.000Z        42  note        web-01            op                hello',
    );
    expect(formatHuman(env({}), { colour: false })).toBe('2026-11-20T11:00:00.000Z        42  note        -                 op');
  });

  it('colours only when asked', () => {
    const plain = formatHuman(env({ kind: 'incident', body: { severity: 'critical', title: 'x' } }), { colour: false });
    const coloured = formatHuman(env({ kind: 'incident', body: { severity: 'critical', title: 'x' } }), { colour: true });
    expect(plain).not.toContain('\u001b[');
    expect(coloured).toContain('\u001b[31m');
    expect(coloured).toContain('\u001b[1;31m[critical] x\u001b[0m');
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

import { describe, expect, it } from 'vitest';
import type { Envelope } from '../../protocol/envelope.js';
import { createStatsAccumulator, formatDuration, renderStatsTable } from './stats.js';

let seq = 0;
const env = (kind: string, node: string | undefined, ts: string, body: Record<string, unknown> = {}): Envelope => ({
  v: 1,
  id: `e${++seq}`,
  seq,
  ts,
  kind,
  ...(node ? { node_id: node } : {}),
  author: 'a',
  body,
});
const at = (sec: number): string => new Date(Date.parse('2026-11-20T10:00:00Z') + sec * 1000).toISOString();
const finding = (severity: string) => ({ check: 'c', severity, title: 't', detail: '', evidence: '' });

describe('stats accumulator', () => {
  const build = () => {
    const acc = createStatsAccumulator();
    // n1: heartbeats every 30 s with one 300 s hole and one 90 s hole.
    const beats = [0, 30, 60, 90, 120, 420, 450, 480, 570, 600, 630];
    for (const s of beats) acc.add(env('heartbeat', 'n1', at(s), { hostname: 'n1', metrics: {} }));
    acc.add(env('scan', 'n1', at(100), { findings: [finding('critical'), finding('high'), finding('low')], summary: '' }));
    acc.add(env('scan', 'n1', at(500), { findings: [finding('medium')], summary: '' }));
    acc.add(env('command', 'n1', at(510), { signed: { payload: { id: 'c1', node_id: 'n1', action: 'x' } } }));
    acc.add(env('command', undefined, at(511), { signed: { payload: { id: 'c2', node_id: 'n2', action: 'x' } } }));
    acc.add(env('receipt', 'n1', at(520), { command_id: 'c1', status: 'succeeded' }));
    acc.add(env('receipt', 'n2', at(521), { command_id: 'c2', status: 'failed' }));
    acc.add(env('receipt', 'n2', at(522), { command_id: 'c3' }));
    acc.add(env('note', undefined, at(700), { text: 'fleet note' }));
    acc.add(env('incident', 'n2', at(701), { severity: 'high' }));
    // Odd bodies must not break anything.
    acc.add(env('scan', 'n2', at(702), { findings: 'nope' }));
    acc.add(env('heartbeat', 'n2', 'not a time', {}));
    return acc.report();
  };

  it('computes per-node figures', () => {
    const { nodes } = build();
    expect(nodes.map((n) => n.node_id)).toEqual(['n1', 'n2', null]);
    const n1 = nodes[0]!;
    expect(n1.total).toBe(15);
    expect(n1.kinds).toEqual({ command: 1, heartbeat: 11, receipt: 1, scan: 2 });
    expect(n1.first_seen).toBe(at(0));
    // Seq order (the order the center received them), not the largest ts.
    expect(n1.last_seen).toBe(at(520));
    expect(n1.heartbeats.count).toBe(11);
    expect(n1.heartbeats.median_interval_s).toBeCloseTo(30, 0);
    expect(n1.heartbeats.max_gap_s).toBe(300);
    // 300 s and 90 s are both more than 2 × 30 s.
    expect(n1.heartbeats.gaps_over_2x_median).toBe(2);
    expect(n1.findings).toEqual({
      scans: 2,
      latest_scan_ts: at(500),
      latest: { critical: 0, high: 0, medium: 1, low: 0, info: 0 },
      total: { critical: 1, high: 1, medium: 1, low: 1, info: 0 },
    });
    expect(n1.commands).toEqual({ issued: 1, by_status: { succeeded: 1 } });

    const n2 = nodes[1]!;
    expect(n2.commands).toEqual({ issued: 1, by_status: { failed: 1, unknown: 1 } });
    expect(n2.heartbeats).toEqual({ count: 1, median_interval_s: null, max_gap_s: null, gaps_over_2x_median: 0 });
    expect(n2.findings.latest).toEqual({ critical: 0, high: 0, medium: 0, low: 0, info: 0 });
    expect(nodes[2]!.kinds).toEqual({ note: 1 });
  });

  it('sums a fleet total', () => {
    const { fleet } = build();
    expect(fleet).toEqual({
      nodes: 2,
      total: 22,
      kinds: { command: 2, heartbeat: 12, incident: 1, note: 1, receipt: 3, scan: 3 },
      first_seen: at(0),
      last_seen: 'not a time',
      heartbeats: 12,
      findings: {
        scans: 3,
        latest: { critical: 0, high: 0, medium: 1, low: 0, info: 0 },
        total: { critical: 1, high: 1, medium: 1, low: 1, info: 0 },
      },
      commands: { issued: 2, by_status: { failed: 1, succeeded: 1, unknown: 1 } },
    });
  });

  it('is empty for no input', () => {
    const r = createStatsAccumulator().report();
    expect(r.nodes).toEqual([]);
    expect(r.fleet.total).toBe(0);
    expect(renderStatsTable(r).split('\n')).toHaveLength(2);
  });

  it('renders a table with a fleet line', () => {
    const acc = createStatsAccumulator();
    acc.add(env('heartbeat', 'web-01', at(0)));
    acc.add(env('heartbeat', 'web-01', at(30)));
    acc.add(env('scan', 'web-01', at(40), { findings: [finding('high')] }));
    acc.add(env('receipt', 'web-01', at(50), { status: 'succeeded' }));
    expect(renderStatsTable(acc.report())).toBe(
      [
        'NODE             EVENTS  HB  SCANS  CMDS  OTHER  FIRST SEEN                LAST SEEN                 HB MEDIAN  HB MAX GAP  GAPS>2x  LATEST C/H/M/L  TOTAL C/H/M/L  RECEIPTS ok/fail/rej/exp',
        'web-01                4   2      1     1      0  2026-11-20T10:00:00.000Z  2026-11-20T10:00:50.000Z  30s        30s               0  0/1/0/0         0/1/0/0        1/0/0/0',
        'FLEET (1 nodes)       4   2      1     1      0  2026-11-20T10:00:00.000Z  2026-11-20T10:00:50.000Z                                  0/1/0/0         0/1/0/0        1/0/0/0',
      ].join('\n'),
    );
  });
});

describe('formatDuration', () => {
  it.each([
    [null, '-'],
    [2.34, '2.3s'],
    [45, '45s'],
    [600, '10m'],
    [7200, '2h'],
    [3 * 86400, '3d'],
  ])('%s', (s, out) => expect(formatDuration(s)).toBe(out));
});

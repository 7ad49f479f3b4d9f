import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Envelope } from '../../protocol/envelope.js';
import { summarize as summarizeFindings, type Finding } from '../../protocol/scan.js';
import { createStatsAccumulator, formatDuration, renderStatsTable, type StatsReport } from './stats.js';
import { heartbeatBody } from '../../test/helpers.js';
import { generateFleetFixture, type FleetFixture } from '../../test/fleet-fixture.js';
import { readLogDir } from '../../test/journal-lines.js';

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
const finding = (severity: Finding['severity']): Finding => ({ check: 'c', severity, title: 't', detail: '', evidence: {} });
const scan = (findings: Finding[]) => ({ node_id: 'n', started_at: at(0), finished_at: at(1), agent_version: '1', findings, summary: summarizeFindings(findings), trigger: 'schedule' });

describe('stats on a log written by a real center', () => {
  let fx: FleetFixture;
  let envs: Envelope[];
  let report: StatsReport;
  beforeAll(async () => {
    fx = await generateFleetFixture();
    envs = readLogDir(fx.logDir);
    const acc = createStatsAccumulator();
    for (const e of envs) acc.add(e);
    report = acc.report();
  }, 60_000);
  afterAll(() => fx?.cleanup());

  it('counts each command once and receipts by the status the node signed', () => {
    const outcomes = (node?: string) => {
      const mine = fx.commands.filter((c) => node === undefined || c.node === node);
      const byStatus: Record<string, number> = {};
      for (const c of mine) if (c.outcome !== 'unanswered') byStatus[c.outcome] = (byStatus[c.outcome] ?? 0) + 1;
      return { issued: mine.length, by_status: byStatus, expired_unanswered: mine.filter((c) => c.outcome === 'unanswered').length };
    };
    expect(report.fleet.commands).toEqual({ issued: 6, by_status: { expired: 1, failed: 1, rejected: 1, succeeded: 2 }, expired_unanswered: 1 });
    for (const n of report.nodes) expect(n.commands, String(n.node_id)).toEqual(outcomes(n.node_id ?? 'none'));
  });

  it('agrees with a plain line count of the same files', () => {
    expect(report.fleet.total).toBe(envs.length);
    const nodes = new Set(envs.map((e) => e.node_id ?? null));
    expect(report.nodes.map((n) => n.node_id)).toEqual([...nodes].sort((a, b) => (a === null ? 1 : b === null ? -1 : a < b ? -1 : 1)));
    for (const n of report.nodes) {
      const mine = envs.filter((e) => (e.node_id ?? null) === n.node_id);
      const kinds: Record<string, number> = {};
      for (const e of mine) kinds[e.kind] = (kinds[e.kind] ?? 0) + 1;
      expect(n.total).toBe(mine.length);
      expect(n.kinds).toEqual(kinds);
      expect(n.first_seen).toBe(mine[0]!.ts);
      expect(n.last_seen).toBe(mine.at(-1)!.ts);
      expect(n.heartbeats.count).toBe(kinds.heartbeat ?? 0);
      const scans = mine.filter((e) => e.kind === 'scan');
      const total = { critical: 0, high: 0, medium: 0, low: 0, info: 0 };
      for (const s of scans) for (const f of s.body.findings as Finding[]) total[f.severity]++;
      expect(n.findings.scans).toBe(scans.length);
      expect(n.findings.total).toEqual(total);
    }
    // Heartbeats 30 s apart on the center's clock; web-2 missed one.
    const web2 = report.nodes.find((n) => n.node_id === 'web-2')!;
    expect(web2.heartbeats).toMatchObject({ count: 5, max_gap_s: expect.closeTo(60, 0) });
    expect(web2.findings.latest).toEqual({ critical: 1, high: 0, medium: 1, low: 0, info: 0 });
  });

  it('prints the right RECEIPTS and CMDS columns', () => {
    const lines = renderStatsTable(report).split('\n');
    const col = (row: string, i: number) => row.trim().split(/\s{2,}/)[i];
    const fleet = lines.at(-1)!;
    expect(fleet).toMatch(/^FLEET \(4 nodes\)/);
    expect(fleet.endsWith('2/1/1/1')).toBe(true);
    expect(col(fleet, 4)).toBe('6');
    const web2 = lines.find((l) => l.startsWith('web-2 '))!;
    expect(web2.endsWith('0/1/1/0')).toBe(true);
    expect(col(web2, 4)).toBe('2');
  });
});

describe('stats accumulator', () => {
  const build = () => {
    const acc = createStatsAccumulator();
    // n1: heartbeats every 30 s with one 300 s hole and one 90 s hole.
    const beats = [0, 30, 60, 90, 120, 420, 450, 480, 570, 600, 630];
    for (const s of beats) acc.add(env('heartbeat', 'n1', at(s), heartbeatBody('n1')));
    acc.add(env('scan', 'n1', at(100), scan([finding('critical'), finding('high'), finding('low')])));
    acc.add(env('scan', 'n1', at(500), scan([finding('medium')])));
    acc.add(env('note', undefined, at(700), { text: 'fleet note' }));
    acc.add(env('incident', 'n2', at(701), { severity: 'high', title: 'x', status: 'open' }));
    // Odd bodies must not break anything.
    acc.add(env('scan', 'n2', at(702), { findings: 'nope' }));
    acc.add(env('receipt', 'n2', at(703), { command_id: 'c3' }));
    acc.add(env('command', 'n2', at(704), {}));
    acc.add(env('heartbeat', 'n2', 'not a time', {}));
    return acc.report();
  };

  it('computes per-node figures', () => {
    const { nodes } = build();
    expect(nodes.map((n) => n.node_id)).toEqual(['n1', 'n2', null]);
    const n1 = nodes[0]!;
    expect(n1.total).toBe(13);
    expect(n1.kinds).toEqual({ heartbeat: 11, scan: 2 });
    expect(n1.first_seen).toBe(at(0));
    // Seq order (the order the center received them), not the largest ts.
    expect(n1.last_seen).toBe(at(500));
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

    const n2 = nodes[1]!;
    expect(n2.commands).toEqual({ issued: 0, by_status: { unknown: 1 }, expired_unanswered: 0 });
    expect(n2.heartbeats).toEqual({ count: 1, median_interval_s: null, max_gap_s: null, gaps_over_2x_median: 0 });
    expect(n2.findings.latest).toEqual({ critical: 0, high: 0, medium: 0, low: 0, info: 0 });
    expect(nodes[2]!.kinds).toEqual({ note: 1 });
  });

  it('is empty for no input', () => {
    const r = createStatsAccumulator().report();
    expect(r.nodes).toEqual([]);
    expect(r.fleet.total).toBe(0);
    expect(renderStatsTable(r).split('\n')).toHaveLength(2);
  });

  it('renders a table with a fleet line', () => {
    const acc = createStatsAccumulator();
    acc.add(env('heartbeat', 'web-01', at(0), heartbeatBody('web-01')));
    acc.add(env('heartbeat', 'web-01', at(30), heartbeatBody('web-01')));
    acc.add(env('scan', 'web-01', at(40), scan([finding('high')])));
    acc.add(env('command', 'web-01', at(45), { event: 'issued', command_id: 'c1', status: 'queued', action: 'ping' }));
    acc.add(env('command', 'web-01', at(46), { event: 'delivered', command_id: 'c1', status: 'delivered', attempt: 1 }));
    acc.add(env('receipt', 'web-01', at(50), { payload: { command_id: 'c1', status: 'succeeded' } }));
    acc.add(env('command', 'web-01', at(50), { event: 'completed', command_id: 'c1', status: 'succeeded' }));
    expect(renderStatsTable(acc.report())).toBe(
      [
        'NODE             EVENTS  HB  SCANS  CMDS  OTHER  FIRST SEEN                LAST SEEN                 HB MEDIAN  HB MAX GAP  GAPS>2x  LATEST C/H/M/L  TOTAL C/H/M/L  RECEIPTS ok/fail/rej/exp',
        'web-01                7   2      1     1      0  2026-11-20T10:00:00.000Z  2026-11-20T10:00:50.000Z  30s        30s               0  0/1/0/0         0/1/0/0        1/0/0/0',
        'FLEET (1 nodes)       7   2      1     1      0  2026-11-20T10:00:00.000Z  2026-11-20T10:00:50.000Z                                  0/1/0/0         0/1/0/0        1/0/0/0',
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

describe('stats keeps timestamps exactly as written', () => {
  it('gives first/last seen and the latest scan time in the form each line has, and the latest counts of the last scan', () => {
    const acc = createStatsAccumulator();
    acc.add(env('heartbeat', 'ts-node', '2026-11-20T10:00:00Z'));
    acc.add(env('scan', 'ts-node', '2026-11-20T10:00:30.000+00:00', scan([finding('high'), finding('low')])));
    acc.add(env('heartbeat', 'ts-node', at(60)));
    const first = acc.report().nodes.find((n) => n.node_id === 'ts-node')!;
    expect([first.first_seen, first.last_seen, first.findings.latest_scan_ts]).toEqual(['2026-11-20T10:00:00Z', at(60), '2026-11-20T10:00:30.000+00:00']);
    acc.add(env('scan', 'ts-node', at(90), scan([finding('critical')])));
    acc.add(env('heartbeat', 'ts-node', 'not a time'));
    const next = acc.report().nodes.find((n) => n.node_id === 'ts-node')!;
    expect([next.last_seen, next.findings.latest_scan_ts]).toEqual(['not a time', at(90)]);
    expect(next.findings.latest).toEqual({ critical: 1, high: 0, medium: 0, low: 0, info: 0 });
    // A report is a snapshot: later lines do not change one already taken.
    expect(first.findings.latest).toEqual({ critical: 0, high: 1, medium: 0, low: 1, info: 0 });
    expect(next.findings.total).toEqual({ critical: 1, high: 1, medium: 0, low: 1, info: 0 });
  });
});

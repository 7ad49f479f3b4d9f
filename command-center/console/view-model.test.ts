import { describe, expect, test } from 'vitest';
import type { Envelope } from '../../protocol/envelope.js';
import { applyEnvelope, createFleetState, type FleetState } from '../fleet-state.js';
import {
  attentionReasons,
  computeStatuses,
  consoleHref,
  describeEnvelope,
  feedItems,
  findingsBySeverity,
  formatBytes,
  formatClock,
  formatDuration,
  latestScans,
  matchesFilter,
  missionBar,
  nodeDetail,
  nodeRow,
  nodeRows,
  NO_FILTER,
  parseFilter,
  pendingEnrollments,
  pill,
  sparkline,
  timeline,
} from './view-model.js';

const policy = { heartbeatIntervalMs: 30_000 };
const T0 = Date.parse('2025-01-01T12:00:00Z');
let seq = 0;
const iso = (ms: number) => new Date(ms).toISOString();
const env = (kind: string, node_id: string | undefined, body: Record<string, unknown>, ms = T0, author = 'admin'): Envelope => ({
  v: 1,
  id: `e${++seq}`,
  seq,
  ts: iso(ms),
  kind,
  author,
  body,
  ...(node_id ? { node_id } : {}),
});
const enrollReq = (id: string, hostname = `${id}.example`, os_profile = 'debian') =>
  env('enrollment', id, { action: 'request', hostname, os_profile, public_key: 'ab'.repeat(32), key_id: 'k'.repeat(16), agent_version: '0.1.0', facts: { arch: 'x86_64' } });
const hb = (id: string, ms: number, o: { services_ok?: boolean; cloudflare_ok?: boolean; load?: number; services?: Record<string, string> } = {}) =>
  env('heartbeat', id, {
    node_id: id,
    hostname: `${id}.example`,
    os_profile: 'debian',
    cloudflare_ok: o.cloudflare_ok ?? true,
    services_ok: o.services_ok ?? true,
    vaultmesh_root: '/opt/vm',
    timestamp: iso(ms),
    agent_version: '0.1.0',
    metrics: { load: [o.load ?? 0.5, 0.4, 0.3], mem_used_bytes: 2 * 2 ** 30, mem_total_bytes: 8 * 2 ** 30, disk_used_bytes: 50, disk_total_bytes: 100, uptime_s: 7200 },
    ...(o.services ? { services: o.services } : {}),
  }, ms);

function fleet(): FleetState {
  const s = createFleetState();
  for (const e of [enrollReq('a'), enrollReq('b'), enrollReq('c', 'c.example', 'ubuntu'), enrollReq('p')]) applyEnvelope(s, e);
  for (const id of ['a', 'b', 'c']) applyEnvelope(s, env('enrollment', id, { action: 'approve' }));
  applyEnvelope(s, hb('a', T0 + 1000));
  applyEnvelope(s, hb('b', T0 + 2000, { services_ok: false, services: { 'nginx.service': 'failed', 'ssh.service': 'active' } }));
  // c never sent a heartbeat; p is pending.
  return s;
}

describe('formatting', () => {
  test.each([
    [0, '0s'],
    [12_400, '12s'],
    [250_000, '4m 10s'],
    [7_500_000, '2h 5m'],
    [3 * 86_400_000 + 4 * 3_600_000, '3d 4h'],
    [-5000, '0s'],
  ])('formatDuration(%d) = %s', (ms, out) => expect(formatDuration(ms)).toBe(out));

  test.each([
    [0, '0 B'],
    [1023, '1023 B'],
    [1536, '1.5 KiB'],
    [8 * 2 ** 30, '8.0 GiB'],
    [123 * 2 ** 30, '123 GiB'],
    [-1, '—'],
  ])('formatBytes(%d) = %s', (n, out) => expect(formatBytes(n)).toBe(out));

  test('formatClock', () => {
    expect(formatClock('2025-01-01T12:34:56.789Z')).toBe('12:34:56');
    expect(formatClock(undefined)).toBe('—');
  });
});

describe('pills never rely on colour alone', () => {
  test.each([
    ['ok', 'OK'],
    ['attn', 'ATTN'],
    ['crit', 'CRIT'],
    ['pending', 'PENDING'],
    ['offline', 'OFFLINE'],
  ] as const)('%s → %s with an icon', (status, label) => {
    const p = pill(status);
    expect(p.label).toBe(label);
    expect(p.icon).not.toBe('');
  });
  test('icons differ between ok, attn, crit, pending, offline', () => {
    expect(new Set(['ok', 'attn', 'crit', 'pending', 'offline'].map((s) => pill(s as 'ok').icon)).size).toBe(5);
  });
});

describe('filters and URLs', () => {
  test.each([
    [{}, NO_FILTER],
    [{ q: '  web ', profile: 'debian', status: 'ok' }, { q: 'web', profile: 'debian', status: 'ok' }],
    [{ profile: 'Bad Profile!', status: 'nonsense' }, NO_FILTER],
    [{ q: 'x'.repeat(100) }, { q: 'x'.repeat(64), profile: '', status: '' }],
  ])('parseFilter(%j)', (q, out) => expect(parseFilter(q)).toEqual(out));

  test.each([
    [NO_FILTER, undefined, '/console'],
    [NO_FILTER, 'web-01', '/console?node=web-01'],
    [{ q: 'a b', profile: '', status: 'attn' }, 'n1', '/console?node=n1&q=a+b&status=attn'],
  ])('consoleHref(%j, %s) = %s', (f, node, out) => expect(consoleHref(f, node)).toBe(out));

  test('matchesFilter by name, id, profile and status', () => {
    const s = fleet();
    const c = s.nodes.get('c')!;
    expect(matchesFilter(c, 'offline', { q: 'C.EX', profile: '', status: '' })).toBe(true);
    expect(matchesFilter(c, 'offline', { q: '', profile: 'debian', status: '' })).toBe(false);
    expect(matchesFilter(c, 'offline', { q: '', profile: 'ubuntu', status: 'offline' })).toBe(true);
    expect(matchesFilter(c, 'offline', { q: '', profile: '', status: 'ok' })).toBe(false);
  });
});

describe('mission bar and rows', () => {
  test('counts by status, uptime at minute resolution, ledger root or a dash', () => {
    const s = fleet();
    const st = computeStatuses(s, T0 + 5000, policy);
    expect(Object.fromEntries(st)).toEqual({ a: 'ok', b: 'attn', c: 'offline', p: 'pending' });
    const bar = missionBar(st, { seq: s.lastSeq, nowMs: T0 + 3_725_000, startedAtMs: T0 });
    expect(bar).toMatchObject({ total: 4, healthy: 1, attention: 1, critical: 0, pending: 1, offline: 1, uptime: '1h 2m', seq: s.lastSeq, ledgerRoot: '—' });
    const withLedger = missionBar(st, { seq: 1, nowMs: T0, startedAtMs: T0, ledger: { tree_size: 7, root_hash: 'ab12'.repeat(16) } });
    expect(withLedger.ledgerRoot).toBe('ab12ab12ab12');
    expect(withLedger.ledgerSize).toBe('7');
  });

  test('rows: worst first, then hostname; filter applied; selection marked', () => {
    const s = fleet();
    const st = computeStatuses(s, T0 + 5000, policy);
    const rows = nodeRows(s, st, NO_FILTER, 'a');
    expect(rows.map((r) => [r.id, r.pill.label])).toEqual([
      ['b', 'ATTN'],
      ['c', 'OFFLINE'],
      ['p', 'PENDING'],
      ['a', 'OK'],
    ]);
    expect(rows.find((r) => r.id === 'a')).toMatchObject({ selected: true, load: '0.50', mem: '25%', lastSeen: '12:00:01', domId: 'node-a', href: '/console?node=a' });
    expect(rows.find((r) => r.id === 'c')).toMatchObject({ load: '—', mem: '—', lastSeen: '—' });
    expect(nodeRows(s, st, { q: '', profile: '', status: 'ok' }).map((r) => r.id)).toEqual(['a']);
  });

  test('a row status follows the clock: late, then offline', () => {
    const s = fleet();
    const a = s.nodes.get('a')!;
    const at = (dt: number) => nodeRow(a, computeStatuses(s, T0 + dt, policy).get('a')!, { filter: NO_FILTER }).pill.label;
    expect(at(30_000)).toBe('OK');
    expect(at(62_000)).toBe('ATTN');
    expect(at(152_000)).toBe('OFFLINE');
  });
});

describe('attention, pending, feed, timeline', () => {
  test.each([
    ['b', 5000, ['services not OK: nginx.service failed']],
    ['c', 5000, ['never sent a heartbeat']],
    ['a', 200_000, ['no heartbeat for 3m 19s']],
    ['a', 70_000, ['no heartbeat for 69 s (expected every 30 s)']],
    ['a', 5000, []],
  ])('attentionReasons(%s at +%d ms)', (id, dt, reasons) => {
    const s = fleet();
    const st = computeStatuses(s, T0 + dt, policy);
    expect(attentionReasons(s.nodes.get(id)!, st.get(id)!, T0 + dt, policy)).toEqual(reasons);
  });

  test('tunnel down is a reason', () => {
    const s = fleet();
    applyEnvelope(s, hb('a', T0 + 3000, { cloudflare_ok: false }));
    expect(attentionReasons(s.nodes.get('a')!, 'attn', T0 + 4000, policy)).toEqual(['Cloudflare tunnel not OK']);
  });

  test('pending enrollments, oldest first', () => {
    const s = fleet();
    expect(pendingEnrollments(s).items.map((p) => p.id)).toEqual(['p']);
    expect(pendingEnrollments(s, 0)).toMatchObject({ items: [], more: 1 });
  });

  test('feed: newest first, no heartbeats, keyed by seq, limited', () => {
    seq = 100;
    const recent = [env('note', 'a', { text: 'first' }), hb('a', T0), env('incident', undefined, { title: 'disk', severity: 'high' }), hb('b', T0)];
    const items = feedItems(recent);
    expect(items.map((i) => [i.domId, i.text])).toEqual([
      ['ev-103', 'incident (high): disk'],
      ['ev-101', 'note: first'],
    ]);
    expect(items[1]!.href).toBe('/console?node=a');
    expect(feedItems(recent, NO_FILTER, 1)).toHaveLength(1);
  });

  test.each([
    [env('enrollment', 'x', { action: 'approve' }, T0, 'ops'), 'enrollment approved by ops'],
    [env('enrollment', 'x', { action: 'reject' }, T0, 'ops'), 'enrollment rejected by ops'],
    [env('join_token', undefined, { action: 'create', token_id: 't1', uses: 3 }), 'join token t1 created (3 uses)'],
    [env('scan', 'x', { findings: [{}, {}], summary: { critical: 1, high: 0 } }), 'scan: 2 findings, 1 critical'],
    [env('receipt', 'x', { action: 'ping', status: 'ok' }), 'receipt: ping ok'],
    [env('tag', 'x', {}), 'tag'],
  ])('describeEnvelope %#', (e, text) => expect(describeEnvelope(e)).toBe(text));

  test('timeline folds runs of heartbeats, newest first', () => {
    seq = 200;
    const t = timeline([hb('a', T0), hb('a', T0 + 30_000), env('note', 'a', { text: 'hi' }, T0 + 40_000), hb('a', T0 + 60_000)]);
    expect(t).toEqual([
      { type: 'heartbeats', count: 1, from: iso(T0 + 60_000), to: iso(T0 + 60_000), fromClock: '12:01:00', toClock: '12:01:00' },
      { type: 'event', seq: 203, kind: 'note', clock: '12:00:40', ts: iso(T0 + 40_000), text: 'note: hi', author: 'admin' },
      { type: 'heartbeats', count: 2, from: iso(T0), to: iso(T0 + 30_000), fromClock: '12:00:00', toClock: '12:00:30' },
    ]);
  });
});

describe('sparklines', () => {
  test('empty and single-point series have no path', () => {
    expect(sparkline([])).toMatchObject({ d: '', last: '—', points: 0 });
    expect(sparkline([1])).toMatchObject({ d: '', last: '1.00', points: 1 });
  });
  test('exact path in a 100×20 box; the floor keeps small values low', () => {
    const s = sparkline([0, 1, 2], { width: 100, height: 20, floor: 4 });
    expect(s.d).toBe('M1.5,18.5L50.0,14.3L98.5,10.0');
    expect(s).toMatchObject({ min: '0.00', max: '2.00', last: '2.00', points: 3 });
  });
  test('NaN samples (no totals) are skipped', () => {
    expect(sparkline([Number.NaN, 50, 60], { format: (v) => `${v}%` }).points).toBe(2);
  });
});

describe('findings and node detail', () => {
  const scan = (id: string, findings: Array<{ severity: string; check: string; title: string }>) => env('scan', id, { findings, finished_at: iso(T0) });

  test('latest scan per node wins; grouped by severity in contract order', () => {
    const s = fleet();
    const scans = latestScans([
      scan('a', [{ severity: 'low', check: 'x', title: 'old' }]),
      scan('a', [{ severity: 'critical', check: 'ssh', title: 'root login' }]),
      scan('b', [{ severity: 'high', check: 'disk', title: 'disk 95%' }, { severity: 'info', check: 'k', title: 'kernel' }]),
    ]);
    const g = findingsBySeverity(scans, s);
    expect(g.map((x) => [x.severity, x.count])).toEqual([
      ['critical', 1],
      ['high', 1],
      ['medium', 0],
      ['low', 0],
      ['info', 1],
    ]);
    expect(g[0]!.items[0]).toMatchObject({ hostname: 'a.example', title: 'root login', href: '/console?node=a' });
  });

  test('detail: facts, services failing first, sparklines from history, timeline', () => {
    const s = fleet();
    applyEnvelope(s, hb('b', T0 + 32_000, { load: 1.5, services_ok: false, services: { 'nginx.service': 'failed', 'ssh.service': 'active' } }));
    const b = s.nodes.get('b')!;
    const d = nodeDetail(b, 'attn', { nowMs: T0 + 33_000, policy, envelopes: [hb('b', T0 + 2000), hb('b', T0 + 32_000)] });
    expect(d.facts).toEqual([['arch', 'x86_64']]);
    expect(d.services.map((x) => [x.unit, x.ok])).toEqual([
      ['nginx.service', false],
      ['ssh.service', true],
    ]);
    expect(d.spark.load.points).toBe(2);
    expect(d.spark.load.last).toBe('1.50');
    expect(d.spark.mem.last).toBe('25%');
    expect(d.spark.disk.last).toBe('50%');
    expect(d.mem).toBe('2.0 GiB / 8.0 GiB');
    expect(d.uptime).toBe('2h 0m');
    expect(d.timeline).toEqual([expect.objectContaining({ type: 'heartbeats', count: 2 })]);
    expect(d.reasons).toEqual(['services not OK: nginx.service failed']);
  });
});

import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { describe as describeLine, type DescribeContext } from '../../protocol/describe.js';
import { generateFleetFixture, type FleetFixture } from '../../test/fleet-fixture.js';
import { readLogDir } from '../../test/journal-lines.js';
import type { Envelope } from '../../protocol/envelope.js';
import { applyEnvelope, createFleetState, type FleetState } from '../fleet/fleet-state.js';
import { parsePolicy } from '../commands/command-policy.js';
import {
  attentionReasons,
  commandArgsFromForm,
  commandForm,
  computeStatuses,
  consoleHref,
  describeEnvelope,
  envelopeStatus,
  feedItems,
  findingsBySeverity,
  formatBytes,
  formatClock,
  formatDuration,
  isFeedEnvelope,
  matchesFilter,
  missionBar,
  nodeDetail,
  nodeRow,
  nodeRows,
  NO_FILTER,
  DEFAULT_VIEW,
  clip,
  formatStamp,
  nodePage,
  nodePill,
  parseFilter,
  parseListView,
  readableTimes,
  shortId,
  sortNodes,
  pendingEnrollments,
  pill,
  scanView,
  scheduleRows,
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
    expect(withLedger).toMatchObject({ ledgerWitness: '', ledgerFork: '' });
    const witnessed = missionBar(st, { seq: 1, nowMs: T0, startedAtMs: T0, ledger: { tree_size: 7, root_hash: 'ab12'.repeat(16), witnessed: 3, forks: 1 } });
    expect(witnessed).toMatchObject({ ledgerWitness: 'witnessed by 3', ledgerFork: 'FORK seen by 1 node' });
    expect(withLedger.ledgerRoot).toBe('ab12ab12ab12');
    expect(withLedger.ledgerSize).toBe('7');
    expect(withLedger.ledgerTitle).toBe(`scan ledger root ${'ab12'.repeat(16)} over 7 scans`);
  });

  test('rows: worst first, then hostname; filter applied; selection marked', () => {
    const s = fleet();
    const st = computeStatuses(s, T0 + 5000, policy);
    const rows = nodeRows(s, st, NO_FILTER, 'a');
    expect(rows.map((r) => [r.id, r.pill.label])).toEqual([
      ['b', 'ATTN'],
      ['c', 'WAITING'],
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
    ['c', 5000, ['approved, waiting for its first heartbeat']],
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
    const recent = [env('note', 'a', { text: 'first' }), hb('a', T0), env('incident', undefined, { title: 'disk', severity: 'high', status: 'open' }), hb('b', T0)];
    const items = feedItems(recent);
    expect(items.map((i) => [i.domId, i.text])).toEqual([
      ['ev-103', 'incident (high): disk'],
      ['ev-101', 'note: first'],
    ]);
    expect(items[1]!.href).toBe('/console?node=a');
    expect(feedItems(recent, NO_FILTER, 1)).toHaveLength(1);
  });

  test.each([
    ['heartbeat', {}, false],
    ['command', { event: 'completed', status: 'succeeded' }, false],
    ['command', { event: 'issued' }, true],
    ['receipt', {}, true],
    ['note', {}, true],
  ])('isFeedEnvelope(%s %j) = %s', (kind, body, out) => expect(isFeedEnvelope({ kind, body })).toBe(out));

  test('timeline folds runs of heartbeats, newest first', () => {
    seq = 200;
    const t = timeline([hb('a', T0), hb('a', T0 + 30_000), env('note', 'a', { text: 'hi' }, T0 + 40_000), hb('a', T0 + 60_000)]);
    expect(t).toEqual([
      { type: 'heartbeats', count: 1, from: iso(T0 + 60_000), to: iso(T0 + 60_000), fromClock: '12:01:00', toClock: '12:01:00' },
      { type: 'event', seq: 203, kind: 'note', clock: '12:00:40', ts: iso(T0 + 40_000), text: 'note: hi', author: 'admin', status: '' },
      { type: 'heartbeats', count: 2, from: iso(T0), to: iso(T0 + 30_000), fromClock: '12:00:00', toClock: '12:00:30' },
    ]);
  });
});

describe('feed, timeline and state from a log written by a real center', () => {
  let fx: FleetFixture;
  let envs: Envelope[];
  let state: FleetState;
  let ctx: DescribeContext;
  beforeAll(async () => {
    fx = await generateFleetFixture();
    envs = readLogDir(fx.logDir);
    state = createFleetState();
    for (const e of envs) applyEnvelope(state, e);
    ctx = { actionOf: (id) => state.commands.byId.get(id)?.action };
  }, 60_000);
  afterAll(() => fx?.cleanup());

  test('replay gives every command the outcome its receipt (or the center) gave it', () => {
    for (const c of fx.commands) {
      const rec = state.commands.byId.get(c.id)!;
      expect(rec, c.id).toMatchObject({ node_id: c.node, action: c.action, status: c.outcome === 'unanswered' ? 'expired' : c.outcome });
      expect(rec.receipt?.payload.status).toBe(c.outcome === 'unanswered' ? undefined : c.outcome);
    }
    expect(state.commands.open.size).toBe(0);
  });

  test('replay applies enrollments, tokens, incidents, tags, scans and attention', () => {
    expect(Object.fromEntries([...state.nodes.values()].map((n) => [n.node_id, n.enrollment]))).toEqual({ 'web-1': 'approved', 'web-2': 'approved', 'db-1': 'revoked', 'edge-1': 'rejected' });
    expect([...state.joinTokens.values()].filter((t) => t.revoked).map((t) => t.label)).toEqual(['rack b12']);
    expect([...state.apiTokens!.byId.values()].map((t) => [t.name, Boolean(t.revoked_at)])).toEqual([['pagerbot', true]]);
    expect([...state.incidents.open.values()].map((i) => i.title)).toEqual(['upstream DNS flapping']);
    expect(state.incidents.resolved).toBe(1);
    expect(state.nodes.get('web-1')!.tags).toEqual(['env=prod', 'tier=edge']);
    expect(state.nodes.get('web-2')!.latest_scan!.open_findings.map((f) => f.severity)).toEqual(['critical', 'medium']);
    expect(state.nodes.get('web-2')!.last_heartbeat!.metrics.disk_used_bytes).toBe(9.7e10);
    expect(state.attention.get('web-2')!.status).toBe('crit');
  });

  test('the feed names each receipt’s action and status, and leaves out heartbeats and completed steps', () => {
    const items = feedItems(envs, NO_FILTER, 500, ctx);
    expect(items.some((i) => i.kind === 'heartbeat')).toBe(false);
    expect(items.filter((i) => i.kind === 'command').map((i) => i.status)).not.toContain('succeeded');
    const receipts = items.filter((i) => i.kind === 'receipt').reverse();
    expect(receipts.map((i) => [i.nodeId, i.status, i.text])).toEqual([
      ['web-1', 'succeeded', 'receipt: ping succeeded (exit 0, 150 ms) — pong=true node_id=web-1'],
      ['web-2', 'failed', 'receipt: service-status failed (EXIT_NONZERO, exit 3, 150 ms) — nginx.service: inactive (dead)'],
      ['web-2', 'rejected', 'receipt: service-restart rejected (ACTION_NOT_ALLOWED, 150 ms) — action service-restart is not allowed on this node'],
      ['db-1', 'expired', 'receipt: ping expired (EXPIRED, 150 ms) — command expired before it could run'],
      ['web-1', 'succeeded', 'receipt: sovereign-scan succeeded (exit 0, 150 ms) — findings=1'],
    ]);
    for (const i of items) expect(i.text, `${i.kind} ${i.seq}`).not.toMatch(/^[a-z_]+: \{|undefined/);
  });

  test('a node timeline: its command from issue to expiry, folded heartbeats, its attention', () => {
    const db1 = envs.filter((e) => e.node_id === 'db-1');
    const t = timeline(db1, 40, ctx);
    const events = t.flatMap((i) => (i.type === 'event' ? [[i.kind, i.status, i.text]] : [['heartbeats', '', String(i.count)]]));
    expect(events.slice(0, 7)).toEqual([
      ['attention', '', 'attention CRIT → OK'],
      ['enrollment', '', 'enrollment revoked by admin'],
      ['attention', '', expect.stringMatching(/^attention OK → CRIT: no heartbeat for \d+ s \(expected every 30 s\)$/)],
      ['command', 'expired', 'command collect-journal expired without a receipt'],
      ['receipt', 'expired', 'receipt: ping expired (EXPIRED, 150 ms) — command expired before it could run'],
      ['command', 'delivered', 'command collect-journal delivered'],
      ['command', 'delivered', 'command ping delivered'],
    ]);
    expect(events).toContainEqual(['heartbeats', '', '6']);
    expect(envelopeStatus(db1.find((e) => e.kind === 'command' && e.body.event === 'issued')!)).toBe('queued');
  });

  test('describeEnvelope is the shared describe()', () => {
    for (const e of envs) expect(describeEnvelope(e, ctx)).toBe(describeLine(e, ctx));
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
  const summary = { critical: 0, high: 0, medium: 0, low: 0, info: 0, checks_run: 3, checks_failed: 0 };
  const scan = (id: string, findings: Array<{ severity: string; check: string; title: string }>, ms = T0) =>
    env('scan', id, {
      scan_id: `s-${seq}`,
      node_id: id,
      trigger: 'schedule',
      started_at: iso(ms),
      finished_at: iso(ms),
      summary: { ...summary, ...Object.fromEntries(['critical', 'high', 'medium', 'low', 'info'].map((k) => [k, findings.filter((f) => f.severity === k).length])) },
      findings: findings.map((f) => ({ ...f, detail: '', evidence: {} })),
    }, ms);

  test('open findings across the fleet come from each node\'s latest scan (state, not the event window)', () => {
    const s = fleet();
    applyEnvelope(s, scan('a', [{ severity: 'low', check: 'x', title: 'old' }]));
    applyEnvelope(s, scan('a', [{ severity: 'critical', check: 'ssh', title: 'root login' }, { severity: 'info', check: 'k', title: 'kernel' }]));
    applyEnvelope(s, scan('b', [{ severity: 'high', check: 'disk', title: 'disk 95%' }, { severity: 'low', check: 'ntp', title: 'ntp off' }]));
    const g = findingsBySeverity(s);
    expect(g.map((x) => [x.severity, x.count])).toEqual([
      ['critical', 1],
      ['high', 1],
      ['medium', 0],
      ['low', 1],
    ]);
    expect(g[0]!.items[0]).toMatchObject({ hostname: 'a.example', title: 'root login', href: '/console?node=a' });
    applyEnvelope(s, env('enrollment', 'b', { action: 'revoke' }));
    expect(findingsBySeverity(s).map((x) => x.count)).toEqual([1, 0, 0, 0]);
  });

  test.each([
    [undefined, undefined],
    [
      { finished_at: iso(T0), trigger: 'command', summary: { ...summary, high: 1, info: 2, checks_failed: 1 }, open_findings: [{ severity: 'low', check: 'b', title: 'B' }, { severity: 'high', check: 'a', title: 'A' }] },
      { finishedAt: iso(T0), clock: '12:00:00', trigger: 'command', summary: '0 critical · 1 high · 0 medium · 0 low · 2 info — 3 checks (1 failed)', findings: [{ severity: 'high', check: 'a', title: 'A' }, { severity: 'low', check: 'b', title: 'B' }], more: 0 },
    ],
  ])('scanView %#', (input, out) => expect(scanView(input)).toEqual(out));

  test('scanView limits the findings and counts the rest', () => {
    const many = Array.from({ length: 5 }, (_, i) => ({ severity: 'medium', check: `c${i}`, title: `t${i}` }));
    expect(scanView({ finished_at: iso(T0), trigger: 'manual', summary: { ...summary, checks_run: 1 }, open_findings: many }, 2)).toMatchObject({ more: 3, summary: '0 critical · 0 high · 0 medium · 0 low · 0 info — 1 check' });
  });

  test('the detail shows the latest scan from state and the schedule', () => {
    const s = fleet();
    applyEnvelope(s, scan('a', [{ severity: 'high', check: 'fw', title: 'firewall off' }]));
    const d = nodeDetail(s.nodes.get('a')!, 'ok', {
      nowMs: T0,
      policy,
      envelopes: [],
      schedule: { runs: [{ action: 'sovereign-scan', every_secs: 21600, jitter_pct: 10, state: 'scheduled', next_run_at: '2025-01-01T18:03:00.000Z', last_run_at: null, last_command_id: null, last_status: null }] },
    });
    expect(d.scan?.findings).toEqual([{ severity: 'high', check: 'fw', title: 'firewall off' }]);
    expect(d.schedule).toEqual([{ action: 'sovereign-scan', state: 'scheduled', nextAt: '2025-01-01T18:03:00.000Z', nextClock: '2025-01-01 18:03:00', every: '6h 0m', lastAt: '', lastStatus: '', blockedReason: '', maintenance: '' }]);
    const held = nodeDetail(s.nodes.get('a')!, 'ok', {
      nowMs: T0,
      policy,
      envelopes: [],
      schedule: { runs: [{ action: 'sovereign-scan', every_secs: 21600, jitter_pct: 10, state: 'maintenance', next_run_at: '2025-01-01T20:00:00.000Z', last_run_at: null, last_command_id: null, last_status: null, maintenance: { window_id: 'mw-1', scans: 'defer', until: '2025-01-01T20:00:00.000Z' } }] },
    });
    expect(held.schedule[0]!.maintenance).toBe('deferred by maintenance mw-1 until 20:00 UTC');
    expect(nodeDetail(s.nodes.get('b')!, 'attn', { nowMs: T0, policy, envelopes: [] })).toMatchObject({ scan: undefined, schedule: [] });
  });

  test('scheduleRows: soonest first, last run and blocked reason carried', () => {
    const run = (action: string, next: string, extra = {}) => ({ action, every_secs: 60, jitter_pct: 0, state: 'scheduled' as const, next_run_at: next, last_run_at: null, last_command_id: null, last_status: null, ...extra });
    const rows = scheduleRows({ runs: [run('b', '2025-01-01T12:05:00.000Z'), run('a', '2025-01-01T12:01:00.000Z', { state: 'blocked', last_run_at: '2025-01-01T11:00:00.000Z', last_status: 'failed', blocked_reason: 'denied' })] });
    expect(rows.map((r) => [r.action, r.state, r.every, r.lastStatus, r.blockedReason])).toEqual([
      ['a', 'blocked', '1m 0s', 'failed', 'denied'],
      ['b', 'scheduled', '1m 0s', '', ''],
    ]);
    expect(scheduleRows(undefined)).toEqual([]);
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

describe('command form', () => {
  const policy = parsePolicy({
    v: 1,
    profiles: {
      '*': { actions: ['ping', 'service-status'], units: ['nginx.service', 'ssh.service'] },
      debian: { actions: ['ping', 'sovereign-scan', 'service-status', 'collect-journal', 'service-restart'], units: ['*'], restart_units: ['nginx.service', 'cloudflared.service'] },
      locked: { actions: ['service-restart'], units: [], restart_units: [] },
    },
  });
  const node = (o: Partial<{ os_profile: string; enrollment: 'approved' | 'pending' }> = {}) => {
    const s = fleet();
    applyEnvelope(s, hb('a', T0 + 3000, { services: { 'nginx.service': 'active', 'cron.service': 'active' } }));
    return { ...s.nodes.get('a')!, ...o };
  };

  test.each([
    [undefined, node(), true, 'Commands are not enabled on this center.'],
    [policy, undefined, true, 'Select a node to send it a command.'],
    [policy, node(), false, 'Sending commands needs the commands:write scope.'],
    [policy, node({ enrollment: 'pending' }), true, 'This node is pending; only approved nodes take commands.'],
    [policy, node({ os_profile: 'locked' }), true, 'The policy allows no action for os_profile locked (profile locked).'],
  ])('unavailable %#', (pol, n, canIssue, reason) => {
    const v = commandForm(pol, n, { canIssue });
    expect(v).toMatchObject({ available: false, reason, actions: [] });
  });

  test('debian: every allowed action in catalogue order, units from the policy and the node', () => {
    const v = commandForm(policy, node(), { canIssue: true });
    expect(v).toMatchObject({ available: true, node: 'a', hostname: 'a.example', profile: 'debian', policyProfile: 'debian' });
    expect(v.actions.map((a) => a.name)).toEqual(['ping', 'sovereign-scan', 'service-status', 'service-restart', 'collect-journal']);
    const args = Object.fromEntries(v.actions.map((a) => [a.name, a.args]));
    expect(args.ping).toEqual([]);
    // `*`: free text, suggesting the units the node reports.
    expect(args['service-status']).toEqual([{ name: 'service-status.unit', id: 'cmd-service-status-unit', label: 'Unit for service-status', input: 'text', options: ['cron.service', 'nginx.service'], required: true }]);
    // Exact restart units: a select of exactly those.
    expect(args['service-restart']![0]).toMatchObject({ input: 'select', options: ['cloudflared.service', 'nginx.service'] });
    expect(args['collect-journal']!.map((f) => [f.name, f.input])).toEqual([
      ['collect-journal.unit', 'text'],
      ['collect-journal.lines', 'number'],
    ]);
  });

  test('an unknown profile falls back to *', () => {
    const v = commandForm(policy, node({ os_profile: 'alpine' }), { canIssue: true });
    expect(v.policyProfile).toBe('*');
    expect(v.actions.map((a) => [a.name, a.args.map((f) => f.options)])).toEqual([
      ['ping', []],
      ['service-status', [['nginx.service', 'ssh.service']]],
    ]);
  });

  test.each([
    ['ping', { action: 'ping', node_id: 'a', 'service-status.unit': 'x' }, {}],
    ['service-status', { 'service-status.unit': ' nginx.service ', 'collect-journal.unit': 'y' }, { unit: 'nginx.service' }],
    ['collect-journal', { 'collect-journal.unit': 'a.service', 'collect-journal.lines': '' }, { unit: 'a.service' }],
    ['collect-journal', { 'collect-journal.unit': 'a.service', 'collect-journal.lines': '50' }, { unit: 'a.service', lines: '50' }],
  ])('commandArgsFromForm(%s, %j)', (action, form, out) => expect(commandArgsFromForm(action, form)).toEqual(out));
});

describe('list views: validation, order and pages', () => {
  test('parseListView takes defaults, refuses bad values with a message per parameter', () => {
    expect(parseListView({})).toEqual({ ok: true, view: DEFAULT_VIEW });
    expect(parseListView({ q: ' web ', status: 'attn', sort: 'last_seen', page: '3', size: '100', profile: '', node: 'x' })).toEqual({
      ok: true,
      view: { q: 'web', profile: '', status: 'attn', sort: 'last_seen', page: 3, size: 100 },
    });
    const bad = parseListView({ status: 'nope', page: '-1', size: '1000' });
    expect(bad.ok).toBe(false);
    expect(bad.ok ? [] : bad.issues.map((i) => i.path).sort()).toEqual(['page', 'size', 'status']);
    expect(parseListView({ page: '1.5' }).ok).toBe(false);
  });

  test('consoleHref keeps a non-default order, size and page, and leaves defaults out', () => {
    expect(consoleHref(DEFAULT_VIEW)).toBe('/console');
    expect(consoleHref({ ...DEFAULT_VIEW, sort: 'name', page: 2, size: 25, status: 'ok' }, 'n1')).toBe('/console?node=n1&status=ok&sort=name&size=25&page=2');
  });

  test('orders: status worst first, name with id as tie-break, last seen newest first with never-seen last', () => {
    const s = fleet();
    const st = computeStatuses(s, T0 + 5000, policy);
    expect(sortNodes(s, st, 'status').map((n) => n.node_id)).toEqual(['b', 'c', 'p', 'a']);
    expect(sortNodes(s, st, 'name').map((n) => n.node_id)).toEqual(['a', 'b', 'c', 'p']);
    expect(sortNodes(s, st, 'last_seen').map((n) => n.node_id)).toEqual(['b', 'a', 'c', 'p']);
  });

  test('nodePage slices after filtering, clamps past the end, and links its neighbours', () => {
    const s = fleet();
    const st = computeStatuses(s, T0 + 5000, policy);
    const sorted = sortNodes(s, st, 'name');
    const view = { ...DEFAULT_VIEW, sort: 'name' as const, size: 25 };
    const p = nodePage(sorted, st, view);
    expect(p).toMatchObject({ total: 4, page: 1, pages: 1, from: 1, to: 4, prev: undefined, next: undefined, fleetEmpty: false });
    const tiny = nodePage(sorted, st, { ...view, size: 1, page: 9 } as never);
    expect(tiny.rows.map((r) => r.id)).toEqual(['p']);
    expect(tiny).toMatchObject({ page: 4, pages: 4, from: 4, to: 4, next: undefined });
    expect(tiny.prev?.href).toBe('/console?sort=name&size=1&page=3');
    expect(tiny.first?.href).toBe('/console?sort=name&size=1');
    const filtered = nodePage(sorted, st, { ...view, profile: 'ubuntu' });
    expect(filtered.rows.map((r) => r.id)).toEqual(['c']);
    expect(filtered.total).toBe(1);
    expect(nodePage([], st, view)).toMatchObject({ total: 0, from: 0, to: 0, fleetEmpty: true });
    expect(p.sorts.find((x) => x.current)?.key).toBe('name');
  });

  test('legibility helpers: short ids, waiting pill, readable stamps, clipped text', () => {
    expect(shortId('web-01')).toBe('web-01');
    expect(shortId('4f1c2e9a-77b0-4c55-9d1e-0a9c3b7e2f10')).toBe('…3b7e2f10');
    const s = fleet();
    expect(nodePill(s.nodes.get('c')!, 'offline').label).toBe('WAITING');
    expect(nodePill(s.nodes.get('a')!, 'offline').label).toBe('OFFLINE');
    expect(formatStamp('2025-01-01T12:00:01.123Z')).toBe('2025-01-01 12:00:01 UTC');
    expect(formatStamp(undefined)).toBe('—');
    expect(readableTimes('command ping issued by admin, expires 2026-12-03T13:32:59.506Z')).toBe('command ping issued by admin, expires 2026\u201112\u201103\u00a013:32:59\u00a0UTC');
    expect(readableTimes('no time here 2026-12-03')).toBe('no time here 2026-12-03');
    expect(clip('short', 10)).toBe('short');
    expect(clip('one two three four five six', 16)).toBe('one two three …');
  });
});

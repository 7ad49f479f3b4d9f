import { describe, expect, it } from 'vitest';
import type { Envelope } from '../../protocol/envelope.js';
import type { MaintenanceBody } from '../../protocol/maintenance.js';
import { maintenanceStartRequestSchema, parseDuration } from '../../protocol/maintenance.js';
import { applyEnvelope, createFleetState, type FleetState, type NodeRecord } from '../fleet/fleet-state.js';
import { HeartbeatHistory } from '../fleet/heartbeat-history.js';
import { captureState, prepareRestore } from '../snapshot/center-state.js';
import { assessNode, MAINTENANCE_SILENCED, type AttentionPolicy } from './attention.js';
import { activeWindowsFor, coveredNodes, isCovered, HELD_KINDS, isHeldEnvelope, listWindows, maintenanceSpans, maintenanceSummary, nextEndMs, overdueWindows, KEEP_ENDED_WINDOWS } from './maintenance.js';
import { WEBHOOK_KINDS } from './webhooks.js';
import { RecentIds } from '../store/recent-ids.js';

const T0 = Date.parse('2026-12-03T12:00:00Z');
const MIN = 60_000;
const HOUR = 60 * MIN;
const iso = (ms: number) => new Date(ms).toISOString();

function node(id: string, over: Partial<NodeRecord> = {}): NodeRecord {
  return {
    node_id: id,
    hostname: id,
    os_profile: 'debian',
    enrollment: 'approved',
    public_key: '00'.repeat(32),
    key_id: 'k',
    agent_version: '1.0.0',
    facts: {},
    enrolled_at: iso(T0 - 10 * HOUR),
    decided_at: iso(T0 - 10 * HOUR),
    last_seen: iso(T0),
    heartbeat_count: 1,
    history: new HeartbeatHistory(120),
    tags: [],
    ...over,
  };
}

let seq = 0;
function env(kind: string, ts: number, body: Record<string, unknown>, over: Partial<Envelope> = {}): Envelope {
  seq++;
  return { v: 1, id: `e${seq}`, seq, ts: iso(ts), kind, author: 'op', body, ...over };
}
const mw = (ts: number, body: MaintenanceBody, nodeId?: string) => env('maintenance', ts, body as unknown as Record<string, unknown>, nodeId ? { node_id: nodeId } : {});

function fleet(): FleetState {
  const s = createFleetState();
  s.nodes.set('web-1', node('web-1', { tags: ['env=prod'] }));
  s.nodes.set('web-2', node('web-2', { tags: ['env=prod'], os_profile: 'ubuntu' }));
  s.nodes.set('db-1', node('db-1', { os_profile: 'ubuntu' }));
  return s;
}

function start(s: FleetState, id: string, target: Record<string, string>, from: number, to: number, scans: 'skip' | 'defer' = 'defer') {
  applyEnvelope(s, mw(from, { event: 'started', window_id: id, target: target as never, reason: 'upgrade', starts_at: iso(from), ends_at: iso(to), scans }, target.node_id));
}

describe('which nodes a window covers', () => {
  it('by node id, os_profile and tag, only inside [starts_at, ends_at)', () => {
    const s = fleet();
    start(s, 'w-node', { node_id: 'db-1' }, T0, T0 + HOUR);
    start(s, 'w-prof', { os_profile: 'ubuntu' }, T0 + 2 * HOUR, T0 + 3 * HOUR);
    start(s, 'w-tag', { tag: 'env=prod' }, T0, T0 + 30 * MIN);
    const w = (id: string) => s.maintenance!.windows.get(id)!;
    expect(coveredNodes(s, w('w-node'))).toEqual(['db-1']);
    expect(coveredNodes(s, w('w-prof')).sort()).toEqual(['db-1', 'web-2']);
    expect(coveredNodes(s, w('w-tag')).sort()).toEqual(['web-1', 'web-2']);
    const ids = (n: string, t: number) => activeWindowsFor(s, s.nodes.get(n)!, t).map((x) => x.id).sort();
    expect(ids('db-1', T0 - 1)).toEqual([]);
    expect(ids('db-1', T0)).toEqual(['w-node']);
    expect(ids('db-1', T0 + HOUR)).toEqual([]); // the end is exclusive
    expect(ids('web-2', T0 + 10 * MIN)).toEqual(['w-tag']);
    expect(ids('web-2', T0 + 2 * HOUR)).toEqual(['w-prof']);
    expect(ids('web-1', T0 + 2 * HOUR)).toEqual([]);
  });

  it('a tag window follows the tag: a node tagged later is covered, one untagged is not', () => {
    const s = fleet();
    start(s, 'w', { tag: 'env=prod' }, T0, T0 + HOUR);
    applyEnvelope(s, env('tag', T0 + MIN, { add: ['env=prod'] }, { node_id: 'db-1' }));
    applyEnvelope(s, env('tag', T0 + MIN, { remove: ['env=prod'] }, { node_id: 'web-1' }));
    expect(activeWindowsFor(s, s.nodes.get('db-1')!, T0 + 2 * MIN)).toHaveLength(1);
    expect(activeWindowsFor(s, s.nodes.get('web-1')!, T0 + 2 * MIN)).toHaveLength(0);
  });

  it('an early end stops coverage at once; extending moves the end; overdue windows are listed for the timer', () => {
    const s = fleet();
    start(s, 'a', { node_id: 'web-1' }, T0, T0 + HOUR);
    start(s, 'b', { node_id: 'web-2' }, T0, T0 + HOUR);
    applyEnvelope(s, mw(T0 + 10 * MIN, { event: 'ended', window_id: 'a', early: true }, 'web-1'));
    applyEnvelope(s, mw(T0 + 20 * MIN, { event: 'extended', window_id: 'b', ends_at: iso(T0 + 2 * HOUR) }, 'web-2'));
    expect(activeWindowsFor(s, s.nodes.get('web-1')!, T0 + 11 * MIN)).toEqual([]);
    expect(activeWindowsFor(s, s.nodes.get('web-2')!, T0 + 90 * MIN)).toHaveLength(1);
    expect(nextEndMs(s)).toBe(T0 + 2 * HOUR);
    expect(overdueWindows(s, T0 + 2 * HOUR - 1)).toEqual([]);
    expect(overdueWindows(s, T0 + 2 * HOUR).map((w) => w.id)).toEqual(['b']);
    // A second end (a replica racing, a replay) changes nothing; the timer's end is stamped with the planned end.
    applyEnvelope(s, mw(T0 + 3 * HOUR, { event: 'ended', window_id: 'b', early: false }, 'web-2'));
    applyEnvelope(s, mw(T0 + 4 * HOUR, { event: 'ended', window_id: 'b', early: true }, 'web-2'));
    expect(s.maintenance!.windows.get('b')).toMatchObject({ ended_at: iso(T0 + 2 * HOUR), ended_early: false });
    const list = listWindows(s, T0 + 5 * HOUR, { recent: true });
    expect(list.map((w) => [w.id, w.state])).toEqual([
      ['b', 'ended'],
      ['a', 'ended'],
    ]);
    expect(listWindows(s, T0 + 5 * HOUR)).toEqual([]);
  });

  it('keeps at most KEEP_ENDED_WINDOWS ended windows, dropping the oldest', () => {
    const s = fleet();
    for (let i = 0; i < KEEP_ENDED_WINDOWS + 5; i++) {
      start(s, `w${i}`, { node_id: 'web-1' }, T0 + i, T0 + HOUR);
      applyEnvelope(s, mw(T0 + i + 1, { event: 'ended', window_id: `w${i}`, early: true }));
    }
    expect(s.maintenance!.windows.size).toBe(KEEP_ENDED_WINDOWS);
    expect(s.maintenance!.forgotten).toBe(5);
    expect(s.maintenance!.windows.has('w0')).toBe(false);
  });
});

describe('silencing in assessNode', () => {
  const policy: AttentionPolicy = { heartbeatIntervalMs: 30_000 };
  const sick = node('n', {
    last_seen: iso(T0 - 10 * MIN), // STALE crit
    agent_version: '0.9.0',
    last_heartbeat: {
      node_id: 'n', hostname: 'n', os_profile: 'debian', vaultmesh_root: '/', timestamp: iso(T0), agent_version: '0.9.0',
      cloudflare_ok: false, services_ok: false, services: { 'nginx.service': 'failed' },
      metrics: { load: [0, 0, 0], mem_used_bytes: 1, mem_total_bytes: 10, disk_used_bytes: 96, disk_total_bytes: 100, uptime_s: 1 },
    },
    open_incidents: [{ id: 'i1', severity: 'high', title: 'x' }],
  });

  it('drops staleness, service, tunnel and agent-version reasons; disk, incidents (and scans) still count', () => {
    const p = { ...policy, expectedAgentVersion: '1.0.0' };
    const loud = assessNode(sick, T0, p);
    expect(loud.reasons.map((r) => r.code).sort()).toEqual(['AGENT_VERSION_DRIFT', 'CLOUDFLARE_DOWN', 'DISK_HIGH', 'OPEN_INCIDENT', 'SERVICES_FAILED', 'STALE']);
    expect(loud.status).toBe('crit');
    const quiet = assessNode(sick, T0, p, { inMaintenance: true });
    expect(quiet.reasons.map((r) => r.code).sort()).toEqual(['DISK_HIGH', 'OPEN_INCIDENT']);
    expect(quiet.silenced!.map((r) => r.code).sort()).toEqual([...MAINTENANCE_SILENCED].sort());
    expect(quiet.status).toBe('crit'); // disk at 96 % is critical, window or not
  });

  it('a node whose only trouble is planned work is OK during the window, through the policy hook', () => {
    const s = fleet();
    const n = s.nodes.get('db-1')!;
    n.last_seen = iso(T0 - 20 * MIN);
    start(s, 'w', { node_id: 'db-1' }, T0 - 30 * MIN, T0 + HOUR);
    const p: AttentionPolicy = { ...policy, inMaintenance: (x, t) => isCovered(s, x, t) };
    expect(assessNode(n, T0, p).status).toBe('ok');
    expect(assessNode(n, T0 + HOUR, p).status).toBe('crit'); // the window is over: the silence is not
  });
});

describe('held webhooks', () => {
  it('counts the webhook kinds about covered nodes per kind and node, during the window only', () => {
    const s = fleet();
    start(s, 'w', { os_profile: 'ubuntu' }, T0, T0 + HOUR);
    const att = (n: string, t: number) => env('attention', t, { status: 'crit', previous: 'ok', reasons: [] }, { node_id: n, author: 'system:attention' });
    const inside = [att('db-1', T0 + MIN), att('web-2', T0 + 2 * MIN), env('incident', T0 + 3 * MIN, { title: 'x', severity: 'high', status: 'open' }, { node_id: 'db-1' })];
    const outside = [att('web-1', T0 + MIN), att('db-1', T0 + HOUR), env('note', T0 + MIN, { text: 'hi' }, { node_id: 'db-1' })];
    for (const e of [...inside, ...outside]) applyEnvelope(s, e);
    expect(inside.every((e) => isHeldEnvelope(s, e))).toBe(true);
    expect(outside.slice(0, 2).some((e) => isHeldEnvelope(s, e))).toBe(false);
    const end = mw(T0 + HOUR, { event: 'ended', window_id: 'w', early: false });
    applyEnvelope(s, end);
    expect(maintenanceSummary(s, mw(T0 + HOUR, { event: 'ended', window_id: 'w', early: false }))).toBeUndefined(); // not the end that closed it
    expect(maintenanceSummary(s, end)).toEqual({
      maintenance: expect.objectContaining({ window_id: 'w', ended_early: false, held: { total: 3, by_kind: { attention: 2, incident: 1 }, by_node: { 'db-1': 2, 'web-2': 1 } } }),
    });
    expect(maintenanceSummary(s, mw(T0, { event: 'extended', window_id: 'w', ends_at: iso(T0 + 2 * HOUR) }))).toBeUndefined();
  });

  it('holds every kind webhooks deliver', () => {
    for (const k of WEBHOOK_KINDS) expect(HELD_KINDS.has(k), k).toBe(true);
  });
});

describe('replay and the state snapshot', () => {
  it('a snapshot mid-window restores the windows, their held counts and their spans', async () => {
    const s = fleet();
    start(s, 'w', { node_id: 'web-1' }, T0, T0 + HOUR, 'skip');
    applyEnvelope(s, env('attention', T0 + MIN, { status: 'crit', previous: 'ok', reasons: [] }, { node_id: 'web-1' }));
    const parts = (st: FleetState) => ({
      state: st,
      recentIds: new RecentIds(4),
      bus: { exportRing: () => ({ envelopes: [], droppedUpTo: 0 }), importRing: () => {} },
      eventLog: { exportWindows: () => ({}), importWindows: () => {} },
      ledgers: { scans: { exportState: () => ({ size: 0, root: '', ids: new Map(), seqs: new Float64Array(0) }) }, commands: { exportState: () => ({ size: 0, root: '', ids: new Map(), seqs: new Float64Array(0) }) } },
    });
    const buf = Buffer.concat(await captureState(parts(s) as never));
    const restored = createFleetState();
    prepareRestore(buf, parts(restored) as never).apply();
    expect(restored.maintenance!.windows.get('w')).toEqual(s.maintenance!.windows.get('w'));
    expect(maintenanceSpans(restored, restored.nodes.get('web-1')!)).toEqual([{ windowId: 'w', fromMs: T0, toMs: T0 + HOUR, scans: 'skip' }]);
    // One object in both maps after the round trip too: an end must close the window for coverage and listing alike.
    expect(restored.maintenance!.open.get('w')).toBe(restored.maintenance!.windows.get('w'));
    applyEnvelope(restored, mw(T0 + 2 * MIN, { event: 'ended', window_id: 'w', early: true }, 'web-1'));
    expect(activeWindowsFor(restored, restored.nodes.get('web-1')!, T0 + 3 * MIN)).toEqual([]);
  });
});

describe('request parsing', () => {
  it('durations', () => {
    expect(parseDuration('2h')).toBe(7200);
    expect(parseDuration('90m')).toBe(5400);
    expect(parseDuration('1d12h')).toBe(129_600);
    for (const bad of ['', 'h', '2x', '-1h', '1h2d']) expect(parseDuration(bad), bad).toBeUndefined();
  });

  it.each([
    [{ reason: 'x', for_secs: 3600 }, /exactly one target/],
    [{ node_id: 'a', tag: 'b', reason: 'x', for_secs: 3600 }, /exactly one target/],
    [{ node_id: 'a', reason: '  ', for_secs: 3600 }, /reason is required/],
    [{ node_id: 'a', reason: 'x' }, /until.*for_secs/],
    [{ node_id: 'a', reason: 'x', for_secs: 3600, until: '2026-12-03T13:00:00Z' }, /until.*for_secs/],
    [{ node_id: 'a', reason: 'x', for_secs: 3600, scans: 'later' }, /skip|defer/],
    [{ node_id: 'a', reason: 'x', for_secs: 31 * 86_400 }, /less than or equal|too big/i],
  ])('rejects %j', (body, message) => {
    const r = maintenanceStartRequestSchema.safeParse(body);
    expect(r.success).toBe(false);
    expect(JSON.stringify(r.error!.issues)).toMatch(message);
  });
});

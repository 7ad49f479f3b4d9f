import { describe, expect, test } from 'vitest';
import type { Envelope } from '../../protocol/envelope.js';
import { applyEnvelope, createFleetState, type FleetState } from '../fleet/fleet-state.js';
import { fleetSnapshot, fleetSnapshotInTurns, sharedFleetSnapshotInTurns, STATUS_SLICE } from './fleet-snapshot.js';

const policy = { heartbeatIntervalMs: 30_000 };
const T0 = Date.parse('2025-01-01T12:00:00Z');
let seq = 0;
const env = (kind: string, node_id: string, body: Record<string, unknown>, ms = T0): Envelope => ({ v: 1, id: `e${++seq}`, seq, ts: new Date(ms).toISOString(), kind, author: 'admin', body, node_id });

function enroll(s: FleetState, id: string, approve: boolean): void {
  applyEnvelope(s, env('enrollment', id, { action: 'request', hostname: `h${id.length % 7}`, os_profile: 'debian', public_key: 'ab'.repeat(32), key_id: 'k'.repeat(16), agent_version: '0.1.0', facts: {} }));
  if (approve) applyEnvelope(s, env('enrollment', id, { action: 'approve' }));
}

function heartbeat(s: FleetState, id: string, ms: number, servicesOk = true): void {
  applyEnvelope(
    s,
    env('heartbeat', id, { node_id: id, hostname: `h${id.length % 7}`, os_profile: 'debian', cloudflare_ok: true, services_ok: servicesOk, vaultmesh_root: '/opt/vm', timestamp: new Date(ms).toISOString(), agent_version: '0.1.0', metrics: { load: [0.1, 0.1, 0.1], mem_used_bytes: 1, mem_total_bytes: 8, disk_used_bytes: 1, disk_total_bytes: 8, uptime_s: 1 } }, ms),
  );
}

/** More nodes than two slices, in every status: ok, attention (services down), offline (silent), pending, never seen. */
function fleet(n: number): FleetState {
  const s = createFleetState();
  for (let i = 0; i < n; i++) {
    const id = `node-${String(i).padStart(5, '0')}`;
    enroll(s, id, i % 10 !== 9);
    if (i % 10 < 7) heartbeat(s, id, i % 10 === 6 ? T0 - 3_600_000 : T0 - (i % 50) * 100, i % 10 !== 5);
  }
  return s;
}

describe('fleetSnapshotInTurns', () => {
  test('gives the statuses and orders of one fleetSnapshot, computing them over several turns', async () => {
    const state = fleet(2 * STATUS_SLICE + 500);
    const src = { state, statusPolicy: policy };
    let turns = 0;
    const snap = await fleetSnapshotInTurns(src, T0, 'status', async () => void turns++);
    const exact = fleetSnapshot(src, T0);
    expect(turns).toBe(3); // after each of the first two slices, then before the order
    expect([...snap.statuses]).toEqual([...exact.statuses]);
    expect(new Set(snap.statuses.values())).toEqual(new Set(['ok', 'attn', 'offline', 'pending']));
    for (const sort of ['status', 'name', 'last_seen'] as const) expect(snap.sorted(sort).map((n) => n.node_id)).toEqual(exact.sorted(sort).map((n) => n.node_id));
    expect(snap.seq).toBe(state.lastSeq);
  });

  test('a node enrolled while it yields has a status and a place in the order; seq is the one it started at', async () => {
    const state = fleet(STATUS_SLICE + 10);
    const src = { state, statusPolicy: policy };
    const startSeq = state.lastSeq;
    let turns = 0;
    const snap = await fleetSnapshotInTurns(src, T0, 'name', async () => {
      if (turns++ === 0) {
        enroll(state, 'late-a', true);
        heartbeat(state, 'late-a', T0, false);
      }
    });
    expect(snap.statuses.get('late-a')).toBe('attn');
    expect(snap.statuses.size).toBe(state.nodes.size);
    expect(snap.sorted('name').map((n) => n.node_id)).toContain('late-a');
    expect(snap.seq).toBe(startSeq);
    expect(state.lastSeq).toBeGreaterThan(startSeq);
  });
});

describe('sharedFleetSnapshotInTurns', () => {
  test('streams that connect together wait for one snapshot made in turns, which is then shared while it is fresh', async () => {
    const state = fleet(2 * STATUS_SLICE + 500);
    const src = { state, statusPolicy: policy };
    let turns = 0;
    const yieldTurn = async () => void turns++;
    const [a, b, c] = await Promise.all([0, 1, 2].map((i) => sharedFleetSnapshotInTurns(src, T0 + i, 500, 'status', yieldTurn)));
    expect(turns).toBe(3); // one computation, not three
    expect(b).toBe(a);
    expect(c).toBe(a);
    expect([...a!.statuses]).toEqual([...fleetSnapshot({ state, statusPolicy: policy }, T0).statuses]);
    // Fresh enough: shared without a turn; also by the live streams' ticks (fleetSnapshot with the same age).
    expect(await sharedFleetSnapshotInTurns(src, T0 + 499, 500, 'name', yieldTurn)).toBe(a);
    expect(fleetSnapshot(src, T0 + 200, 500)).toBe(a);
    expect(turns).toBe(3);
    // Older than that: a new one, in turns again.
    const later = await sharedFleetSnapshotInTurns(src, T0 + 500, 500, 'status', yieldTurn);
    expect(later).not.toBe(a);
    expect(later.atMs).toBe(T0 + 500);
    expect(turns).toBe(6);
  });
});

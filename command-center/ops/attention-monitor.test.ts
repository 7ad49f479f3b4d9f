import { manualTimers } from '../../test/helpers.js';
import { describe, expect, it } from 'vitest';
import type { Envelope, EnvelopeDraft } from '../../protocol/envelope.js';
import { createAttentionMonitor } from './attention-monitor.js';
import { SWEEP_MAX_IN_FLIGHT } from '../../lib/paced-sweep.js';
import { applyEnvelope, createFleetState, type FleetState } from '../fleet/fleet-state.js';

const T0 = Date.parse('2025-03-01T12:00:00Z');
const INTERVAL = 30_000;

/** A fake clock and interval timer that only move when the test says so. */
function fakeTime() {
  let now = T0;
  const manual = manualTimers();
  const timers = manual.timers;
  return {
    timers,
    now: () => new Date(now),
    /** Moves the clock and fires every interval once (the sweep period is shorter than any step here). */
    advance(ms: number) {
      now += ms;
      manual.fireAll();
    },
    get active() {
      return manual.active;
    },
  };
}

/** The center's write path in miniature: journal (array) → apply → commit hook. */
function harness(state: FleetState = createFleetState(), journal: Envelope[] = []) {
  const time = fakeTime();
  let seq = journal.at(-1)?.seq ?? 0;
  const monitor = createAttentionMonitor({
    state,
    now: time.now,
    policy: { heartbeatIntervalMs: INTERVAL },
    intervalMs: 5_000,
    timers: time.timers,
    submit: async (draft: EnvelopeDraft) => {
      const env: Envelope = { v: 1, id: draft.id ?? `e${seq + 1}`, seq: ++seq, ts: time.now().toISOString(), kind: draft.kind, author: draft.author, body: draft.body, ...(draft.node_id ? { node_id: draft.node_id } : {}) };
      journal.push(env);
      applyEnvelope(state, env);
      monitor.onCommit([{ envelope: env }]);
      return { envelope: env, duplicate: false };
    },
  });
  const submit = (kind: string, node_id: string, body: Record<string, unknown>) => {
    const env: Envelope = { v: 1, id: `x${seq + 1}`, seq: ++seq, ts: time.now().toISOString(), kind, node_id, author: 'test', body };
    journal.push(env);
    applyEnvelope(state, env);
    monitor.onCommit([{ envelope: env }]);
  };
  const enroll = (id: string) =>
    submit('enrollment', id, { action: 'request', hostname: id, os_profile: 'ubuntu', public_key: '00'.repeat(32), key_id: 'k', agent_version: '1.0.0', facts: {}, auto_approved: true });
  const heartbeat = (id: string, over: Record<string, unknown> = {}) =>
    submit('heartbeat', id, {
      node_id: id, hostname: id, os_profile: 'ubuntu', cloudflare_ok: true, services_ok: true, vaultmesh_root: '/', timestamp: time.now().toISOString(), agent_version: '1.0.0',
      metrics: { load: [0, 0, 0], mem_used_bytes: 1, mem_total_bytes: 10, disk_used_bytes: 1, disk_total_bytes: 10, uptime_s: 1 },
      ...over,
    });
  const transitions = () => journal.filter((e) => e.kind === 'attention').map((e) => `${e.node_id}:${(e.body as { previous: string }).previous}→${(e.body as { status: string }).status}`);
  return { state, journal, time, monitor, enroll, heartbeat, submit, transitions };
}

describe('attention monitor', () => {
  it('journals ok→attn→crit on the staleness timer and →ok on the next heartbeat, once each', async () => {
    const h = harness();
    h.monitor.start();
    h.enroll('n1');
    h.heartbeat('n1');
    await h.monitor.idle();
    expect(h.transitions()).toEqual([]);

    h.time.advance(50_000);
    await h.monitor.idle();
    expect(h.transitions()).toEqual([]); // 50 s < 2 × 30 s

    h.time.advance(15_000);
    await h.monitor.idle();
    h.time.advance(5_000); // a second sweep with the same status appends nothing
    await h.monitor.idle();
    expect(h.transitions()).toEqual(['n1:ok→attn']);
    const attn = h.journal.find((e) => e.kind === 'attention')!;
    expect(attn.author).toBe('system:attention');
    expect(attn.body).toMatchObject({ status: 'attn', previous: 'ok', reasons: [{ code: 'STALE', severity: 'attn' }] });

    h.time.advance(90_000);
    await h.monitor.idle();
    expect(h.transitions()).toEqual(['n1:ok→attn', 'n1:attn→crit']);
    expect(h.state.attention.get('n1')?.status).toBe('crit');

    h.heartbeat('n1');
    await h.monitor.idle();
    expect(h.transitions()).toEqual(['n1:ok→attn', 'n1:attn→crit', 'n1:crit→ok']);
    h.monitor.stop();
    expect(h.time.active).toBe(0);
  });

  it('re-evaluates on a committed envelope for the node (no timer needed)', async () => {
    const h = harness();
    h.enroll('n1');
    h.heartbeat('n1', { cloudflare_ok: false });
    await h.monitor.idle();
    expect(h.transitions()).toEqual(['n1:ok→attn']);
    h.submit('incident', 'n1', { title: 'db down', severity: 'critical', status: 'open' });
    await h.monitor.idle();
    expect(h.transitions()).toEqual(['n1:ok→attn', 'n1:attn→crit']);
    const incidentId = h.journal.find((e) => e.kind === 'incident')!.id;
    h.submit('resolve', 'n1', { incident_id: incidentId });
    h.heartbeat('n1');
    await h.monitor.idle();
    expect(h.transitions()).toEqual(['n1:ok→attn', 'n1:attn→crit', 'n1:crit→ok']);
  });

  it('a burst of commits appends one transition', async () => {
    const h = harness();
    h.enroll('n1');
    for (let i = 0; i < 20; i++) h.heartbeat('n1', { services_ok: false });
    h.monitor.sweep();
    h.monitor.sweep();
    await h.monitor.idle();
    expect(h.transitions()).toEqual(['n1:ok→attn']);
  });

  it('replaying a journal with transitions appends nothing; a later sweep continues from the journaled status', async () => {
    const first = harness();
    first.monitor.start();
    first.enroll('n1');
    first.heartbeat('n1');
    first.time.advance(200_000);
    await first.monitor.idle();
    expect(first.transitions()).toEqual(['n1:ok→crit']);
    first.monitor.stop();

    // Restart: a fresh state replays the journal; the monitor is not fed by replay.
    const state = createFleetState();
    for (const env of first.journal) applyEnvelope(state, env);
    const journal = [...first.journal];
    const second = harness(state, journal);
    expect(second.state.attention.get('n1')?.status).toBe('crit');
    second.time.advance(200_000); // still stale: same status as journaled
    second.monitor.start();
    await second.monitor.idle();
    expect(second.journal.length).toBe(first.journal.length);
  });

  it('clears a standing alarm once when a node is revoked, and never again', async () => {
    const h = harness();
    h.enroll('n1');
    h.heartbeat('n1', { cloudflare_ok: false });
    await h.monitor.idle();
    h.submit('enrollment', 'n1', { action: 'revoke' });
    await h.monitor.idle();
    h.monitor.sweep();
    await h.monitor.idle();
    expect(h.transitions()).toEqual(['n1:ok→attn', 'n1:attn→ok']);
  });

  it('a failed append is retried on the next evaluation', async () => {
    const state = createFleetState();
    const time = fakeTime();
    let fail = true;
    const appended: EnvelopeDraft[] = [];
    const errors: unknown[] = [];
    const monitor = createAttentionMonitor({
      state,
      now: time.now,
      policy: { heartbeatIntervalMs: INTERVAL },
      intervalMs: 5_000,
      timers: time.timers,
      onError: (e) => errors.push(e),
      submit: async (d) => {
        if (fail) throw new Error('disk full');
        appended.push(d);
        return {};
      },
    });
    applyEnvelope(state, { v: 1, id: 'e1', seq: 1, ts: new Date(T0 - 1e6).toISOString(), kind: 'enrollment', node_id: 'n1', author: 't', body: { action: 'request', hostname: 'n1', os_profile: 'u', public_key: 'k', key_id: 'k', agent_version: '1', auto_approved: true } });
    monitor.sweep();
    await monitor.idle();
    expect(errors).toHaveLength(1);
    fail = false;
    monitor.sweep();
    await monitor.idle();
    expect(appended.map((d) => d.body.status)).toEqual(['crit']);
  });

  it('after a downtime, a sweep over many stale nodes keeps at most SWEEP_MAX_IN_FLIGHT appends pending, journals each node once, in node order', async () => {
    const state = createFleetState();
    const time = fakeTime();
    const nodes = Array.from({ length: 2 * SWEEP_MAX_IN_FLIGHT + 50 }, (_, i) => `n${String(i).padStart(4, '0')}`);
    for (const [i, id] of nodes.entries()) {
      applyEnvelope(state, { v: 1, id: `e${i}`, seq: i + 1, ts: new Date(T0 - 1e6).toISOString(), kind: 'enrollment', node_id: id, author: 't', body: { action: 'request', hostname: id, os_profile: 'u', public_key: 'k', key_id: 'k', agent_version: '1', auto_approved: true } });
    }
    const started: string[] = [];
    let seq = nodes.length;
    let pending = 0;
    let maxPending = 0;
    const monitor = createAttentionMonitor({
      state,
      now: time.now,
      policy: { heartbeatIntervalMs: INTERVAL },
      intervalMs: 5_000,
      timers: time.timers,
      submit: async (d) => {
        started.push(d.node_id!);
        maxPending = Math.max(maxPending, ++pending);
        // An append takes a few turns (the journal's group commit), so many would pile up unpaced.
        for (let i = 0; i < 3; i++) await new Promise<void>((r) => setImmediate(r));
        seq++;
        applyEnvelope(state, { v: 1, id: `a${seq}`, seq, ts: time.now().toISOString(), kind: d.kind, author: d.author, body: d.body, node_id: d.node_id! });
        pending--;
        return {};
      },
    });
    monitor.start();
    // Ticks while the first sweep runs start no second one beside it.
    for (let i = 0; i < 3; i++) {
      await new Promise<void>((r) => setImmediate(r));
      time.advance(5_000);
    }
    await monitor.idle();
    expect(maxPending).toBe(SWEEP_MAX_IN_FLIGHT);
    expect(started).toEqual(nodes);
    monitor.stop();
  });
});

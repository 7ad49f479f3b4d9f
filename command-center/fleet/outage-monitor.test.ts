import { manualTimers } from '../../test/helpers.js';
import { describe, expect, it } from 'vitest';
import type { Envelope, EnvelopeDraft } from '../../protocol/envelope.js';
import { parseEnvelope } from '../../protocol/envelope-kinds.js';
import { describe as describeEnvelope } from '../../protocol/describe.js';
import type { OfflineBody, RejoinBody } from '../../protocol/outage-events.js';
import { createOutageMonitor } from './outage-monitor.js';
import { SWEEP_MAX_IN_FLIGHT } from '../../lib/paced-sweep.js';
import { outageActions } from './outages.js';
import { applyEnvelope, createFleetState, type FleetState } from './fleet-state.js';

const T0 = Date.parse('2025-03-01T12:00:00Z');
const INTERVAL = 30_000;
const THRESHOLD = 5 * INTERVAL;

/**
 * The center's write path in miniature: journal (array) → apply → commit hook, with de-duplication by envelope id as
 * the pipeline does it (a second envelope with a journaled id is answered as a duplicate and not stored).
 */
function harness(opts: { state?: FleetState; journal?: Envelope[]; now?: number } = {}) {
  const state = opts.state ?? createFleetState();
  const journal = opts.journal ?? [];
  let now = opts.now ?? T0;
  const manual = manualTimers();
  let seq = journal.at(-1)?.seq ?? 0;
  let duplicates = 0;
  const append = (draft: EnvelopeDraft) => {
    const env: Envelope = { v: 1, id: draft.id ?? `x${seq + 1}`, seq: ++seq, ts: new Date(now).toISOString(), kind: draft.kind, author: draft.author, body: draft.body, ...(draft.node_id ? { node_id: draft.node_id } : {}) };
    // What the monitor journals must fit its kind (the reducers trust journaled lines).
    if (env.kind === 'offline' || env.kind === 'rejoin') expect(parseEnvelope(env).ok, `${env.kind} ${JSON.stringify(env.body)}`).toBe(true);
    journal.push(env);
    applyEnvelope(state, env);
    monitor.onCommit([{ envelope: env }]);
    return env;
  };
  const monitor = createOutageMonitor({
    state,
    now: () => new Date(now),
    thresholdMs: THRESHOLD,
    intervalMs: 10_000,
    timers: manual.timers,
    submit: async (draft) => {
      const seen = journal.find((e) => e.author === draft.author && e.id === draft.id);
      if (seen) {
        duplicates++;
        return { envelope: seen, duplicate: true };
      }
      return { envelope: append(draft), duplicate: false };
    },
  });
  const enroll = (id: string) =>
    append({ kind: 'enrollment', node_id: id, author: `node:${id}`, body: { action: 'request', token_id: 't', hostname: id, os_profile: 'ubuntu', public_key: '00'.repeat(32), key_id: 'k', agent_version: '1.0.0', facts: {}, auto_approved: true } });
  const heartbeat = (id: string, outbox?: { queued: number; delivered: number }) =>
    append({
      kind: 'heartbeat',
      node_id: id,
      author: `node:${id}`,
      body: {
        node_id: id, hostname: id, os_profile: 'ubuntu', cloudflare_ok: true, services_ok: true, vaultmesh_root: '/', timestamp: new Date(now).toISOString(), agent_version: '1.0.0',
        metrics: { load: [0, 0, 0], mem_used_bytes: 1, mem_total_bytes: 10, disk_used_bytes: 1, disk_total_bytes: 10, uptime_s: 1 },
        ...(outbox ? { outbox } : {}),
      },
    });
  const of = <K extends 'offline' | 'rejoin'>(kind: K) => journal.filter((e) => e.kind === kind) as Array<Envelope & { body: K extends 'offline' ? OfflineBody : RejoinBody }>;
  return {
    state,
    journal,
    monitor,
    enroll,
    heartbeat,
    of,
    get duplicates() {
      return duplicates;
    },
    async advance(ms: number) {
      now += ms;
      manual.fireAll();
      await monitor.idle();
    },
    nowMs: () => now,
  };
}

describe('outage monitor', () => {
  it('declares offline once the silence passes the threshold, once, with the last heartbeat seq and silence', async () => {
    const h = harness();
    h.monitor.start();
    h.enroll('n1');
    const last = h.heartbeat('n1');
    await h.advance(THRESHOLD); // exactly the threshold: not yet
    expect(h.of('offline')).toEqual([]);
    await h.advance(10_000);
    await h.advance(10_000);
    await h.advance(60_000);
    const off = h.of('offline');
    expect(off).toHaveLength(1);
    expect(off[0]).toMatchObject({ node_id: 'n1', id: `offline:n1:${last.seq}`, author: 'system:outages' });
    expect(off[0]!.body).toEqual({ last_heartbeat_seq: last.seq, last_heartbeat_ts: last.ts, silent_s: 160, threshold_s: 150, due_at: new Date(Date.parse(last.ts) + THRESHOLD).toISOString(), declared_late: false });
    expect(h.state.outages.get('n1')).toMatchObject({ offline_seq: off[0]!.seq, last_heartbeat_seq: last.seq });
    expect(describeEnvelope(off[0]!)).toBe(`offline — last heartbeat ${last.ts} (seq ${last.seq}), silent for 2m 40s`);
  });

  it('journals the rejoin once the agent reports its outbox drained, with the gap and the delivered count', async () => {
    const h = harness();
    h.monitor.start();
    h.enroll('n1');
    const last = h.heartbeat('n1');
    await h.advance(THRESHOLD + 10_000);
    const off = h.of('offline')[0]!;
    await h.advance(3_600_000 + 2 * 60_000);
    // The backlog arrives: three buffered heartbeats; the last reports nothing queued behind it.
    const first = h.heartbeat('n1', { queued: 2, delivered: 1 });
    await h.monitor.idle();
    expect(h.of('rejoin')).toEqual([]); // still delivering: the count is not known yet
    h.heartbeat('n1', { queued: 1, delivered: 2 });
    await h.advance(0);
    expect(h.of('rejoin')).toEqual([]);
    h.heartbeat('n1', { queued: 0, delivered: 57 });
    await h.monitor.idle();
    const rejoin = h.of('rejoin');
    expect(rejoin).toHaveLength(1);
    expect(rejoin[0]).toMatchObject({ id: `rejoin:n1:${off.seq}`, node_id: 'n1' });
    expect(rejoin[0]!.body).toEqual({
      offline_seq: off.seq,
      last_heartbeat_seq: last.seq,
      last_heartbeat_ts: last.ts,
      first_heartbeat_seq: first.seq,
      first_heartbeat_ts: first.ts,
      gap_s: (Date.parse(first.ts) - Date.parse(last.ts)) / 1000,
      delivered: 57,
      outbox: 'drained',
    });
    expect(rejoin[0]!.body.gap_s).toBe(150 + 10 + 3600 + 120);
    expect(describeEnvelope(rejoin[0]!)).toBe('rejoined after 1h 4m, 57 buffered entries delivered');
    expect(h.state.outages.size).toBe(0);
    // Quiet afterwards: nothing more is journaled, and the next silence is a new outage named by its own heartbeat.
    h.heartbeat('n1', { queued: 0, delivered: 0 });
    await h.advance(10_000);
    expect(h.of('rejoin')).toHaveLength(1);
    expect(h.of('offline')).toHaveLength(1);
    await h.advance(THRESHOLD + 10_000);
    expect(h.of('offline').map((e) => e.body.last_heartbeat_seq)).toEqual([last.seq, h.journal.filter((e) => e.kind === 'heartbeat').at(-1)!.seq]);
  });

  it('an agent that does not report its outbox rejoins at its first heartbeat with the count unknown, not 0', async () => {
    const h = harness();
    h.monitor.start();
    h.enroll('old');
    h.heartbeat('old');
    await h.advance(THRESHOLD + 1000);
    await h.advance(60_000);
    h.heartbeat('old');
    await h.monitor.idle();
    const r = h.of('rejoin');
    expect(r).toHaveLength(1);
    expect(r[0]!.body).toMatchObject({ delivered: null, outbox: 'unknown', gap_s: 211 });
    expect(describeEnvelope(r[0]!)).toBe('rejoined after 3m 31s, buffered entries unknown (the agent does not report its outbox)');
  });

  it('a node that falls silent again before its backlog drained: rejoin (interrupted) with what arrived, then a new offline', async () => {
    const h = harness();
    h.monitor.start();
    h.enroll('n1');
    h.heartbeat('n1');
    await h.advance(THRESHOLD + 1000);
    const back = h.heartbeat('n1', { queued: 40, delivered: 1 });
    h.heartbeat('n1', { queued: 39, delivered: 2 });
    await h.advance(THRESHOLD + 1000);
    expect(h.of('rejoin').map((e) => e.body)).toMatchObject([{ first_heartbeat_seq: back.seq, delivered: 2, outbox: 'interrupted' }]);
    const offs = h.of('offline');
    expect(offs).toHaveLength(2);
    expect(offs[1]!.seq).toBeGreaterThan(h.of('rejoin')[0]!.seq); // in order: the return, then the new outage
    expect(offs[1]!.body.last_heartbeat_seq).toBe(back.seq + 1);
    expect(describeEnvelope(h.of('rejoin')[0]!)).toContain('2 buffered entries delivered before it went silent again');
  });

  it('never declares a node it never heard from, nor a node that is not approved', async () => {
    const h = harness();
    h.monitor.start();
    h.enroll('quiet');
    await h.advance(10 * THRESHOLD);
    expect(h.of('offline')).toEqual([]);
    const node = h.state.nodes.get('quiet')!;
    expect(outageActions({ ...node, enrollment: 'revoked', last_seen: new Date(T0).toISOString(), last_heartbeat_seq: 1 }, undefined, { nowMs: T0 + 10 * THRESHOLD, thresholdMs: THRESHOLD, sinceMs: T0 })).toEqual([]);
  });

  it('a restart (replay into a new state) declares nothing twice; an outage that became due while down is declared late', async () => {
    const h = harness();
    h.monitor.start();
    h.enroll('a');
    h.enroll('b');
    h.heartbeat('a');
    h.heartbeat('b');
    await h.advance(THRESHOLD + 1000);
    expect(h.of('offline').map((e) => e.node_id)).toEqual(['a', 'b']);
    h.heartbeat('b'); // b is back (old agent: rejoin at once)
    await h.monitor.idle();
    h.monitor.stop();
    expect(h.of('rejoin').map((e) => e.node_id)).toEqual(['b']);

    // The center is down for an hour; then starts from its journal.
    const state = createFleetState();
    for (const e of h.journal) applyEnvelope(state, e);
    const h2 = harness({ state, journal: h.journal, now: h.nowMs() + 3_600_000 });
    h2.monitor.start();
    await h2.monitor.idle();
    const offs = h2.of('offline');
    expect(offs.map((e) => e.node_id)).toEqual(['a', 'b', 'b']); // a: not again; b: its new silence, once
    expect(offs[2]!.body.declared_late).toBe(true);
    expect(offs[0]!.body.declared_late).toBe(false);
    expect(describeEnvelope(offs[2]!)).toContain('(declared late: it went silent while the center was down)');
    await h2.advance(10_000);
    await h2.advance(10_000);
    expect(h2.of('offline')).toHaveLength(3);
    expect(h2.duplicates).toBe(0);
  });

  it('two leaders in turn (a new leader that has not applied the first one’s offline yet) store it once: the id is the outage', async () => {
    const h = harness();
    h.monitor.start();
    h.enroll('a');
    h.heartbeat('a');
    // A replica whose state lags: it has the heartbeat but not the offline the other journals.
    const lagging = createFleetState();
    for (const e of h.journal) applyEnvelope(lagging, e);
    await h.advance(THRESHOLD + 1000);
    expect(h.of('offline')).toHaveLength(1);
    const h2 = harness({ state: lagging, journal: h.journal, now: h.nowMs() });
    // Its submit sees the shared journal (as the PostgreSQL store sees every replica's ids) and answers a duplicate.
    h2.monitor.start();
    await h2.monitor.idle();
    expect(h.of('offline')).toHaveLength(1);
    expect(h2.duplicates).toBe(1);
  });

  it('a heartbeat that raced the declaration (journaled between the last one it names and the offline) is the return', async () => {
    const h = harness();
    h.enroll('n1');
    const last = h.heartbeat('n1');
    const state = h.state;
    // The journal's order when a heartbeat is appended while the offline is on its way: heartbeat first, then it.
    const raced = h.heartbeat('n1', { queued: 0, delivered: 0 });
    applyEnvelope(state, { v: 1, id: `offline:n1:${last.seq}`, seq: raced.seq + 1, ts: raced.ts, kind: 'offline', node_id: 'n1', author: 'system:outages', body: { last_heartbeat_seq: last.seq, last_heartbeat_ts: last.ts, silent_s: 151, threshold_s: 150, due_at: last.ts, declared_late: false } });
    expect(state.outages.get('n1')).toMatchObject({ offline_seq: raced.seq + 1, returned: { seq: raced.seq, ts: raced.ts, report: { queued: 0, delivered: 0 } } });
    // The next sweep journals its rejoin (the report says drained) rather than leaving the outage open.
    expect(outageActions(state.nodes.get('n1')!, state.outages.get('n1'), { nowMs: Date.parse(raced.ts) + 1000, thresholdMs: THRESHOLD, sinceMs: T0 }).map((a) => [a.kind, a.body])).toEqual([
      ['rejoin', expect.objectContaining({ first_heartbeat_seq: raced.seq, delivered: 0, outbox: 'drained' })],
    ]);
  });

  it('keeps the drained report’s count when later heartbeats are applied before the rejoin is journaled', async () => {
    const h = harness();
    h.monitor.start();
    h.enroll('n1');
    h.heartbeat('n1');
    await h.advance(THRESHOLD + 1000);
    h.monitor.stop(); // a leader change: nobody journals the rejoin for a while
    h.heartbeat('n1', { queued: 1, delivered: 1 });
    h.heartbeat('n1', { queued: 0, delivered: 2 });
    h.heartbeat('n1', { queued: 0, delivered: 0 }); // the agent counts afresh after reporting empty
    h.monitor.start();
    await h.monitor.idle();
    expect(h.of('rejoin').map((e) => e.body)).toMatchObject([{ delivered: 2, outbox: 'drained' }]);
  });

  it('decides silence the same on canonical journal times (compared as strings) and on other shapes (parsed)', () => {
    const state = createFleetState();
    const node = { ...({} as never), node_id: 'x', enrollment: 'approved', last_heartbeat_seq: 7 } as Parameters<typeof outageActions>[0];
    const ctx = { nowMs: T0 + THRESHOLD + 1, thresholdMs: THRESHOLD, sinceMs: T0 };
    for (const lastSeen of ['2025-03-01T12:00:00.000Z', '2025-03-01T12:00:00Z', '2025-03-01T13:00:00+01:00']) {
      expect(outageActions({ ...node, last_seen: lastSeen }, state.outages.get('x'), ctx).map((a) => a.kind), lastSeen).toEqual(['offline']);
      expect(outageActions({ ...node, last_seen: lastSeen }, undefined, { ...ctx, nowMs: T0 + THRESHOLD }), lastSeen).toEqual([]);
    }
  });

  it('runs only between start and stop', async () => {
    const h = harness();
    h.enroll('a');
    h.heartbeat('a');
    await h.advance(THRESHOLD + 1000);
    expect(h.of('offline')).toEqual([]);
    h.monitor.start();
    await h.monitor.idle();
    expect(h.of('offline')).toHaveLength(1);
    expect(h.of('offline')[0]!.body.declared_late).toBe(true);
    h.monitor.stop();
    h.heartbeat('a');
    await h.advance(10_000);
    expect(h.of('rejoin')).toEqual([]);
  });

  it('after a downtime, the sweep over many silent nodes keeps at most SWEEP_MAX_IN_FLIGHT appends pending and declares each once, in node order', async () => {
    const h = harness();
    const nodes = Array.from({ length: 2 * SWEEP_MAX_IN_FLIGHT + 50 }, (_, i) => `n${String(i).padStart(4, '0')}`);
    for (const id of nodes) {
      h.enroll(id);
      h.heartbeat(id);
    }
    const state = createFleetState();
    for (const e of h.journal) applyEnvelope(state, e);
    const journal = [...h.journal];
    let now = h.nowMs() + 3_600_000;
    const manual = manualTimers();
    const declared: string[] = [];
    let pending = 0;
    let maxPending = 0;
    const monitor = createOutageMonitor({
      state,
      now: () => new Date(now),
      thresholdMs: THRESHOLD,
      intervalMs: 10_000,
      timers: manual.timers,
      submit: async (draft) => {
        maxPending = Math.max(maxPending, ++pending);
        for (let i = 0; i < 3; i++) await new Promise<void>((r) => setImmediate(r));
        const env: Envelope = { v: 1, id: draft.id!, seq: journal.length + 1, ts: new Date(now).toISOString(), kind: draft.kind, author: draft.author, body: draft.body, node_id: draft.node_id! };
        journal.push(env);
        applyEnvelope(state, env);
        declared.push(`${draft.kind}:${draft.node_id}`);
        pending--;
        return { envelope: env, duplicate: false };
      },
    });
    monitor.start();
    // Ticks while the first sweep runs start no second one beside it, and declare nothing twice.
    for (let i = 0; i < 3; i++) {
      await new Promise<void>((r) => setImmediate(r));
      now += 10_000;
      manual.fireAll();
    }
    await monitor.idle();
    expect(maxPending).toBe(SWEEP_MAX_IN_FLIGHT);
    expect(declared).toEqual(nodes.map((id) => `offline:${id}`));
    monitor.stop();
  });
});

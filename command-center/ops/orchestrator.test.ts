import { afterEach, describe, expect, it } from 'vitest';
import type { Envelope, EnvelopeDraft } from '../../protocol/envelope.js';
import { generateKeyPair } from '../../protocol/keys.js';
import { enrolledNode, heartbeatBody, startTestCenter, tempDir, type TestCenter, manualTimers } from '../../test/helpers.js';
import type { Logger } from '../../lib/logger.js';
import { parsePolicy } from '../commands/command-policy.js';
import { createCommandService } from '../commands/command-store.js';
import { applyEnvelope, createFleetState, type FleetState } from '../fleet/fleet-state.js';
import { adjustForMaintenance, createOrchestrator, hashUnit, mergePlans, rememberedJitter, lastRunsFromCommands, nextRunMs, planTick, runKey, ORCHESTRATOR_AUTHOR, type PlanNode } from './orchestrator.js';
import { loadScheduleFile, parseSchedule } from './schedule.js';

const T0 = Date.parse('2025-03-01T12:00:00Z');
const MIN = 60_000;
const HOUR = 60 * MIN;
const TICK = 30_000;
const half = () => 0.5; // no jitter: first run at anchor + half a jitter span, then exactly every interval

const SIX_H = parseSchedule({ v: 1, profiles: { '*': [{ action: 'sovereign-scan', every_secs: 21_600, jitter_pct: 10 }] } });

describe('schedule file', () => {
  it('the shipped default scans every profile every 6 h ± 10 %', () => {
    const s = loadScheduleFile();
    expect(s.profiles['*']).toEqual([{ action: 'sovereign-scan', args: {}, every_secs: 21_600, jitter_pct: 10, ttl_secs: 1800 }]);
  });

  it.each([
    [{ v: 1, profiles: { '*': [{ action: 'sovereign-scan', every_secs: 10 }] } }, /every_secs/],
    [{ v: 1, profiles: { '*': [{ action: 'nope', every_secs: 3600 }] } }, /unknown action/],
    [{ v: 1, profiles: { '*': [{ action: 'service-status', every_secs: 3600 }] } }, /unit/],
    [{ v: 1, profiles: { '*': [{ action: 'ping', every_secs: 3600 }, { action: 'ping', every_secs: 7200 }] } }, /one schedule per action/],
    [{ v: 1, profiles: { Bad: [] } }, /profiles\.Bad/],
    [{ v: 1, profiles: {}, extra: 1 }, /extra|Unrecognized/i],
  ])('rejects %j', (value, message) => {
    expect(() => parseSchedule(value)).toThrow(message);
  });
});

describe('planTick', () => {
  const node = (id: string, over: Partial<PlanNode> = {}): PlanNode => ({ node_id: id, os_profile: 'debian', enrollment: 'approved', online: true, anchorMs: T0, ...over });
  const first = T0 + 18 * MIN; // anchor + 0.5 × (10 % of 6 h)
  const cases: Array<[string, { nodes: PlanNode[]; last?: Record<string, number>; pending?: string[]; now: number; schedule?: typeof SIX_H }, string[]]> = [
    ['never run, before its first slot', { nodes: [node('a')], now: first - 1 }, []],
    ['never run, at its first slot', { nodes: [node('a')], now: first }, ['a:sovereign-scan']],
    ['offline node gets nothing', { nodes: [node('a', { online: false })], now: T0 + 100 * HOUR }, []],
    ['pending enrollment gets nothing', { nodes: [node('a', { enrollment: 'pending' })], now: T0 + 100 * HOUR }, []],
    ['revoked node gets nothing', { nodes: [node('a', { enrollment: 'revoked' })], now: T0 + 100 * HOUR }, []],
    ['ran 5 h ago: not due', { nodes: [node('a')], last: { a: T0 }, now: T0 + 5 * HOUR }, []],
    ['ran 6 h ago: due', { nodes: [node('a')], last: { a: T0 }, now: T0 + 6 * HOUR }, ['a:sovereign-scan']],
    ['due but one pending: nothing (no pile-up)', { nodes: [node('a')], last: { a: T0 }, pending: ['a'], now: T0 + 30 * HOUR }, []],
    ['most overdue first', { nodes: [node('b'), node('a'), node('c')], last: { a: T0, b: T0 - HOUR, c: T0 + HOUR }, now: T0 + 8 * HOUR }, ['b:sovereign-scan', 'a:sovereign-scan', 'c:sovereign-scan']],
    [
      'capped at max_per_tick',
      { nodes: [node('b'), node('a'), node('c')], now: T0 + 8 * HOUR, schedule: { ...SIX_H, max_per_tick: 2 } },
      ['a:sovereign-scan', 'b:sovereign-scan'],
    ],
    [
      'profile schedules override *; an empty list opts out',
      {
        nodes: [node('a'), node('b', { os_profile: 'appliance' }), node('c', { os_profile: 'ubuntu' })],
        now: T0 + 8 * HOUR,
        schedule: parseSchedule({ v: 1, profiles: { '*': [{ action: 'sovereign-scan', every_secs: 21_600 }], appliance: [], debian: [{ action: 'ping', every_secs: 3600, jitter_pct: 0 }] } }),
      },
      ['a:ping', 'c:sovereign-scan'],
    ],
  ];
  it.each(cases)('%s', (_name, t, expected) => {
    const last = new Map(Object.entries(t.last ?? {}).map(([id, ms]) => [runKey(id, 'sovereign-scan'), ms]));
    const pending = new Set((t.pending ?? []).map((id) => runKey(id, 'sovereign-scan')));
    const plan = planTick(t.nodes, t.schedule ?? SIX_H, last, pending, t.now, half);
    expect(plan.map((p) => `${p.nodeId}:${p.action}`)).toEqual(expected);
  });

  it('jitter is deterministic per node and run, within ± jitter_pct, and spreads nodes apart', () => {
    const entry = SIX_H.profiles['*']![0]!;
    const nexts = Array.from({ length: 200 }, (_, i) => nextRunMs(entry, `n${i}`, T0, T0));
    for (const n of nexts) expect(Math.abs(n - (T0 + 6 * HOUR))).toBeLessThanOrEqual(36 * MIN);
    expect(nextRunMs(entry, 'n1', T0, T0)).toBe(nexts[1]); // the same on every tick
    expect(new Set(nexts).size).toBeGreaterThan(190);
    // A later run of the same node draws a new offset.
    expect(nextRunMs(entry, 'n1', T0 + 6 * HOUR, T0) - (T0 + 12 * HOUR)).not.toBe(nexts[1]! - (T0 + 6 * HOUR));
    expect(hashUnit('x')).toBe(hashUnit('x'));
  });

  it('rememberedJitter answers what its source does, asks it once per key, and stays within its bound', () => {
    const asked: string[] = [];
    const source = (k: string) => {
      asked.push(k);
      return hashUnit(k);
    };
    const r = rememberedJitter(source, 3);
    const keys = ['a|scan|first', 'b|scan|first', 'a|scan|first', 'c|scan|1', 'a|scan|first'];
    expect(keys.map(r)).toEqual(keys.map(hashUnit));
    expect(asked).toEqual(['a|scan|first', 'b|scan|first', 'c|scan|1']);
    // A fourth key starts afresh (bounded memory): the old ones are asked again.
    expect(r('d|scan|2')).toBe(hashUnit('d|scan|2'));
    expect(r('a|scan|first')).toBe(hashUnit('a|scan|first'));
    expect(asked.slice(3)).toEqual(['d|scan|2', 'a|scan|first']);
  });
});

/** A fake clock and interval timer that only move when the test says so. */
function fakeTime() {
  let now = T0;
  const manual = manualTimers();
  const timers = manual.timers;
  return {
    timers,
    now: () => new Date(now),
    set(ms: number) {
      now = ms;
    },
    fire() {
      manual.fireAll();
    },
    get ms() {
      return now;
    },
    get active() {
      return manual.active;
    },
  };
}

const POLICY = parsePolicy({
  v: 1,
  profiles: {
    '*': { actions: ['ping', 'sovereign-scan'] },
    locked: { actions: ['ping'] },
    gated: { actions: ['ping', 'sovereign-scan'], approvals: { 'sovereign-scan': 1 } },
  },
});

/** The center's write path in miniature: journal (array) → apply; a real CommandService with the policy above. */
function harness(opts: { state?: FleetState; journal?: Envelope[]; random?: (k: string) => number; start?: number } = {}) {
  const state = opts.state ?? createFleetState();
  const journal = opts.journal ?? [];
  const time = fakeTime();
  if (opts.start) time.set(opts.start);
  let seq = journal.at(-1)?.seq ?? 0;
  const append = (draft: EnvelopeDraft): Envelope => {
    const env: Envelope = { v: 1, id: draft.id ?? `e${seq + 1}`, seq: ++seq, ts: time.now().toISOString(), kind: draft.kind, author: draft.author, body: draft.body, ...(draft.node_id ? { node_id: draft.node_id } : {}) };
    journal.push(env);
    applyEnvelope(state, env);
    return env;
  };
  const commands = createCommandService({ state, submit: async (d) => ({ envelope: append(d), duplicate: false }), centerKey: generateKeyPair(), policy: POLICY, now: time.now });
  const logs: string[] = [];
  const log: Logger = { info: (m) => logs.push(`info ${m}`), warn: (m) => logs.push(`warn ${m}`), error: (m) => logs.push(`error ${m}`) };
  const orchestrator = createOrchestrator({
    state,
    commands,
    schedule: SIX_H,
    statusPolicy: { heartbeatIntervalMs: 30_000 },
    now: time.now,
    tickMs: TICK,
    timers: time.timers,
    random: opts.random ?? half,
    log,
  });
  const enroll = (id: string, over: { os_profile?: string; approved?: boolean } = {}) =>
    append({
      kind: 'enrollment',
      node_id: id,
      author: 'test',
      body: { action: 'request', hostname: id, os_profile: over.os_profile ?? 'debian', public_key: '00'.repeat(32), key_id: 'k', agent_version: '1.0.0', facts: {}, auto_approved: over.approved !== false },
    });
  const heartbeat = (id: string) => append({ kind: 'heartbeat', node_id: id, author: `node:${id}`, body: { ...heartbeatBody(id), timestamp: time.now().toISOString() } });
  /** The agent side: every open command of `id` is answered with a succeeded receipt. */
  const answer = (id: string) => {
    for (const cid of [...(state.commands.open.get(id) ?? [])]) {
      append({ kind: 'receipt', node_id: id, author: `node:${id}`, body: { payload: { command_id: cid, node_id: id, status: 'succeeded' } } });
    }
  };
  /** Steps the clock tick by tick up to `untilMs`; before each tick the `alive` nodes heartbeat (and answer, if asked). */
  const run = async (untilMs: number, step: { alive?: string[]; answering?: string[]; sweep?: boolean } = {}) => {
    while (time.ms + TICK <= untilMs) {
      time.set(time.ms + TICK);
      for (const id of step.alive ?? []) heartbeat(id);
      for (const id of step.answering ?? []) answer(id);
      if (step.sweep) await commands.sweep();
      time.fire();
      await orchestrator.idle();
    }
  };
  const scheduled = (id?: string) =>
    journal.filter((e) => e.kind === 'command' && (e.body as { event: string }).event === 'issued' && e.author === ORCHESTRATOR_AUTHOR && (!id || e.node_id === id));
  return { state, journal, time, commands, orchestrator, logs, enroll, heartbeat, answer, run, scheduled };
}

describe('orchestrator (fake clock)', () => {
  it('issues exactly one scan per schedule slot per node, through the command path, signed, author orchestrator', async () => {
    const h = harness();
    h.orchestrator.start();
    for (const id of ['a', 'b', 'c']) h.enroll(id);
    const all = ['a', 'b', 'c'];
    await h.run(T0 + 13 * HOUR, { alive: all, answering: all });
    for (const id of all) {
      const issued = h.scheduled(id);
      expect(issued.map((e) => e.ts)).toEqual(['2025-03-01T12:18:00.000Z', '2025-03-01T18:18:00.000Z', '2025-03-02T00:18:00.000Z']);
      expect((issued[0]!.body as { action: string; signed: { payload: { action: string } } }).signed.payload.action).toBe('sovereign-scan');
    }
    expect(h.state.commands.byId.size).toBe(9);
    expect(h.logs).toEqual([]);
    h.orchestrator.stop();
    expect(h.time.active).toBe(0);
  });

  it('with the default hash jitter: one scan per slot, 5.4 … 6.6 h apart, nodes not in lockstep', async () => {
    const h = harness({ random: hashUnit });
    h.orchestrator.start();
    const ids = ['n1', 'n2', 'n3', 'n4', 'n5'];
    for (const id of ids) h.enroll(id);
    await h.run(T0 + 13 * HOUR, { alive: ids, answering: ids });
    const firsts = new Set<number>();
    for (const id of ids) {
      const ts = h.scheduled(id).map((e) => Date.parse(e.ts));
      expect(ts.length).toBeGreaterThanOrEqual(2);
      expect(ts.length).toBeLessThanOrEqual(3);
      expect(ts[0]! - T0).toBeLessThanOrEqual(36 * MIN + TICK);
      for (let i = 1; i < ts.length; i++) {
        expect(ts[i]! - ts[i - 1]!).toBeGreaterThanOrEqual(5.4 * HOUR);
        expect(ts[i]! - ts[i - 1]!).toBeLessThanOrEqual(6.6 * HOUR + TICK);
      }
      firsts.add(ts[0]!);
    }
    expect(firsts.size).toBeGreaterThan(1);
  });

  it('issues nothing more while a scan is pending; after it expires, the next one comes at the next slot', async () => {
    const h = harness();
    h.orchestrator.start();
    h.enroll('a');
    await h.run(T0 + 13 * HOUR, { alive: ['a'] }); // never answers, nothing sweeps: stays queued
    expect(h.scheduled('a')).toHaveLength(1);
    expect(h.orchestrator.view()[0]!.runs[0]).toMatchObject({ state: 'pending', last_status: 'queued' });

    const h2 = harness();
    h2.orchestrator.start();
    h2.enroll('a');
    await h2.run(T0 + 13 * HOUR, { alive: ['a'], sweep: true }); // expires after ttl_secs (30 min)
    expect(h2.scheduled('a').map((e) => e.ts)).toEqual(['2025-03-01T12:18:00.000Z', '2025-03-01T18:18:00.000Z', '2025-03-02T00:18:00.000Z']);
    expect(h2.orchestrator.view()[0]!.runs[0]!.last_status).toBe('expired');
  });

  it('an operator-issued scan that is still open also counts as pending', async () => {
    const h = harness();
    h.orchestrator.start();
    h.enroll('a');
    h.heartbeat('a');
    await h.commands.issue({ nodeId: 'a', action: 'sovereign-scan', author: 'admin', ttlSecs: 86_400 });
    await h.run(T0 + 2 * HOUR, { alive: ['a'] });
    expect(h.scheduled('a')).toHaveLength(0);
  });

  it('an action that needs approvals is proposed, once: no second proposal while one waits, nothing signed', async () => {
    const h = harness();
    h.orchestrator.start();
    h.enroll('a', { os_profile: 'gated' });
    await h.run(T0 + 13 * HOUR, { alive: ['a'] }); // nobody approves, nothing sweeps: the proposal stays open
    const proposed = h.journal.filter((e) => e.kind === 'command' && (e.body as { event: string }).event === 'proposed' && e.author === ORCHESTRATOR_AUTHOR);
    expect(proposed).toHaveLength(1);
    expect(h.scheduled('a')).toHaveLength(0);
    expect(h.state.commands.proposals.size).toBe(1);

    // Approved by an operator within the proposal's hour, it is signed and queued like any scheduled scan.
    const h2 = harness();
    h2.orchestrator.start();
    h2.enroll('a', { os_profile: 'gated' });
    await h2.run(T0 + 40 * MIN, { alive: ['a'] });
    const rec = await h2.commands.decide({ id: [...h2.state.commands.proposals][0]!, author: 'admin', kind: 'approve' });
    expect(rec).toMatchObject({ status: 'queued', issued_by: ORCHESTRATOR_AUTHOR, proposal: { approvals: [{ by: 'admin' }] } });
  });

  it('offline and never-seen nodes get nothing queued; a node coming back gets one scan, not a backlog', async () => {
    const h = harness();
    h.orchestrator.start();
    h.enroll('never'); // approved, never heard from
    h.enroll('pend', { approved: false }); // online but not approved
    h.enroll('back');
    await h.run(T0 + 14 * HOUR, { alive: ['pend'] });
    expect(h.scheduled()).toHaveLength(0);
    expect(h.orchestrator.view().map((n) => [n.node_id, n.runs[0]!.state])).toEqual([
      ['back', 'offline'],
      ['never', 'offline'],
    ]);
    await h.run(T0 + 15 * HOUR, { alive: ['back', 'pend'], answering: ['back'] });
    expect(h.scheduled().map((e) => [e.node_id, e.ts])).toEqual([['back', '2025-03-02T02:00:30.000Z']]);
  });

  it('respects a policy denial from the command path: none issued, logged once (not every tick), shown as blocked', async () => {
    const h = harness();
    h.orchestrator.start();
    h.enroll('l1', { os_profile: 'locked' });
    h.enroll('l2', { os_profile: 'locked' });
    h.enroll('ok');
    const alive = ['l1', 'l2', 'ok'];
    await h.run(T0 + 13 * HOUR, { alive, answering: alive });
    expect(h.scheduled('l1')).toHaveLength(0);
    expect(h.scheduled('l2')).toHaveLength(0);
    expect(h.scheduled('ok')).toHaveLength(3);
    expect(h.logs).toHaveLength(1);
    expect(h.logs[0]).toMatch(/^warn orchestrator: the command policy denies scheduled sovereign-scan for os_profile locked \(action sovereign-scan is not allowed/);
    const l1 = h.orchestrator.view({ nodeId: 'l1' })[0]!.runs[0]!;
    expect(l1).toMatchObject({ state: 'blocked', last_run_at: null });
    expect(l1.blocked_reason).toMatch(/not allowed/);
  });

  it('survives a restart: last runs come back from the replayed commands, nothing is issued twice', async () => {
    const h = harness();
    h.orchestrator.start();
    h.enroll('a');
    await h.run(T0 + HOUR, { alive: ['a'], answering: ['a'] });
    expect(h.scheduled('a')).toHaveLength(1);
    h.orchestrator.stop();

    const state = createFleetState();
    for (const env of h.journal) applyEnvelope(state, env);
    expect(lastRunsFromCommands(state.commands.byId.values()).get(runKey('a', 'sovereign-scan'))?.ms).toBe(T0 + 18 * MIN);
    const h2 = harness({ state, journal: [...h.journal], start: T0 + HOUR });
    h2.orchestrator.start();
    expect(h2.orchestrator.view()[0]!.runs[0]).toMatchObject({ last_run_at: '2025-03-01T12:18:00.000Z', next_run_at: '2025-03-01T18:18:00.000Z', last_status: 'succeeded' });
    await h2.run(T0 + 7 * HOUR, { alive: ['a'], answering: ['a'] });
    expect(h2.scheduled('a').map((e) => e.ts)).toEqual(['2025-03-01T12:18:00.000Z', '2025-03-01T18:18:00.000Z']);
  });
});

describe('orchestrator tick at fleet scale', () => {
  it('plans 2,500 nodes in slices, yielding to the event loop, and issues exactly the most overdue max_per_tick', async () => {
    const h = harness({ random: hashUnit });
    const ids = Array.from({ length: 2500 }, (_, i) => `n${String(i).padStart(4, '0')}`);
    for (const id of ids) h.enroll(id);
    h.time.set(T0 + 2 * HOUR); // every first run (approval + up to 36 min) is due
    for (const id of ids) h.heartbeat(id);
    const span = 0.1 * 21_600_000;
    const offset = (id: string) => Math.floor(hashUnit(`${id}|sovereign-scan|first`) * span);
    const expected = [...ids].sort((a, b) => offset(a) - offset(b) || (a < b ? -1 : 1)).slice(0, 200);
    let turns = 0;
    let ticking = true;
    const spin = () => {
      turns++;
      if (ticking) setImmediate(spin);
    };
    setImmediate(spin);
    const issued = await h.orchestrator.tick();
    ticking = false;
    expect(issued.map((r) => r.node_id).sort()).toEqual([...expected].sort());
    expect(h.scheduled()).toHaveLength(200);
    // Three plan slices and eight issue slices: the loop had turns in between.
    expect(turns).toBeGreaterThanOrEqual(8);
  });

  it('mergePlans keeps the most overdue max of two plans, in plan order', () => {
    const run = (nodeId: string, dueMs: number) => ({ nodeId, action: 'sovereign-scan', args: {}, ttlSecs: 60, dueMs });
    expect(mergePlans([run('b', 1), run('d', 5)], [run('a', 1), run('c', 3)], 3).map((r) => r.nodeId)).toEqual(['a', 'b', 'c']);
  });
});

describe('GET /api/orchestrator', () => {
  let center: TestCenter | undefined;
  let tmp: ReturnType<typeof tempDir> | undefined;
  afterEach(async () => {
    await center?.close();
    tmp?.cleanup();
    center = tmp = undefined;
  });

  it('lists schedules and per node the next run and the last run with its status; replay restores them', async () => {
    tmp = tempDir();
    let nowMs = Date.now();
    const now = () => new Date(nowMs);
    // Hour-long heartbeat interval: the node stays online while the test moves the center's clock.
    center = await startTestCenter(tmp.dir, { heartbeatSecs: 3600 }, { now });
    const node = await enrolledNode(center, 'web-1');
    expect((await node.send('POST', '/api/agent/heartbeat', heartbeatBody('web-1'))).status).toBe(200);

    const before = await center.api('GET', '/api/orchestrator');
    expect(before.status).toBe(200);
    expect(before.json).toMatchObject({ enabled: true, tick_secs: 30, max_per_tick: 200, schedules: { '*': [{ action: 'sovereign-scan', every_secs: 21_600, jitter_pct: 10 }] } });
    expect(before.json.nodes).toMatchObject([{ node_id: 'web-1', os_profile: 'debian', runs: [{ action: 'sovereign-scan', state: 'scheduled', last_run_at: null, last_status: null }] }]);
    expect(Date.parse(before.json.nodes[0].runs[0].next_run_at) - nowMs).toBeLessThanOrEqual(36 * MIN);

    nowMs += 40 * MIN; // past the first-run window
    const issued = await center.services.orchestrator!.tick();
    expect(issued.map((r) => [r.node_id, r.action, r.issued_by])).toEqual([['web-1', 'sovereign-scan', 'orchestrator']]);
    expect(await center.services.orchestrator!.tick()).toEqual([]); // pending: no second one

    const after = await center.api('GET', '/api/orchestrator?node_id=web-1');
    const run = after.json.nodes[0].runs[0];
    expect(run).toMatchObject({ state: 'pending', last_command_id: issued[0]!.id, last_status: 'queued', last_run_at: issued[0]!.issued_at });
    const gap = Date.parse(run.next_run_at) - Date.parse(run.last_run_at);
    expect(gap).toBeGreaterThanOrEqual(5.4 * HOUR);
    expect(gap).toBeLessThanOrEqual(6.6 * HOUR);
    const cmd = await center.api('GET', `/api/commands/${issued[0]!.id}`);
    expect(cmd.json).toMatchObject({ status: 'queued', issued_by: 'orchestrator', signed: { payload: { action: 'sovereign-scan', node_id: 'web-1' } } });

    await center.close();
    center = await startTestCenter(tmp.dir, { heartbeatSecs: 3600 }, { now });
    const replayed = await center.api('GET', '/api/orchestrator');
    expect(replayed.json.nodes[0].runs[0]).toEqual(run);
  });

  it('needs nodes:read', async () => {
    tmp = tempDir();
    center = await startTestCenter(tmp.dir);
    const tok = await center.api('POST', '/api/tokens', { name: 'writer', scopes: ['events:write'] });
    expect(tok.status).toBe(201);
    const r = await center.api('GET', '/api/orchestrator', undefined, { authorization: `Bearer ${tok.json.token}` });
    expect(r.status).toBe(403);
  });
});

describe('maintenance windows: skip and defer', () => {
  const node = (id: string, over: Partial<PlanNode> = {}): PlanNode => ({ node_id: id, os_profile: 'debian', enrollment: 'approved', online: true, anchorMs: T0, ...over });
  const span = (from: number, to: number, scans: 'skip' | 'defer') => [{ windowId: 'w', fromMs: from, toMs: to, scans }];
  const due = (n: PlanNode, now: number) => planTick([n], SIX_H, new Map([[runKey(n.node_id, 'sovereign-scan'), T0]]), new Set(), now, half).map((r) => r.nodeId);

  it('defer: a run due inside the window waits for its end, then runs once', () => {
    const n = node('a', { windows: span(T0 + 5 * HOUR, T0 + 8 * HOUR, 'defer') });
    expect(due(n, T0 + 6 * HOUR)).toEqual([]);
    expect(due(n, T0 + 8 * HOUR - 1)).toEqual([]);
    expect(due(n, T0 + 8 * HOUR)).toEqual(['a']);
    expect(adjustForMaintenance(SIX_H.profiles['*']![0]!, 'a', T0 + 6 * HOUR, T0, n.windows, T0, half)).toEqual({ atMs: T0 + 8 * HOUR, window: n.windows![0] });
  });

  it('skip: the slot inside the window is dropped; the next slot after it runs', () => {
    const n = node('a', { windows: span(T0 + 5 * HOUR, T0 + 8 * HOUR, 'skip') });
    expect(due(n, T0 + 6 * HOUR)).toEqual([]);
    expect(due(n, T0 + 8 * HOUR)).toEqual([]); // not caught up at the end, unlike defer
    expect(due(n, T0 + 12 * HOUR - 1)).toEqual([]);
    expect(due(n, T0 + 12 * HOUR)).toEqual(['a']);
  });

  it('skip over several slots (a long window on a short schedule) lands on the first slot after it', () => {
    const entry = parseSchedule({ v: 1, profiles: { '*': [{ action: 'sovereign-scan', every_secs: 3600, jitter_pct: 0 }] } }).profiles['*']![0]!;
    const r = adjustForMaintenance(entry, 'a', T0 + HOUR, T0, span(T0 + 30 * MIN, T0 + 10 * HOUR + 5 * MIN, 'skip'), T0, half);
    expect(r.atMs).toBe(T0 + 11 * HOUR);
  });

  it('a slot overdue before the window does not run inside it: defer waits for the end, skip drops it', () => {
    // Ran at T0, due at T0 + 6 h; the window began at T0 + 7 h before anything issued it (the node was offline).
    expect(due(node('a', { windows: span(T0 + 7 * HOUR, T0 + 8 * HOUR, 'defer') }), T0 + 7 * HOUR + MIN)).toEqual([]);
    expect(due(node('a', { windows: span(T0 + 7 * HOUR, T0 + 8 * HOUR, 'defer') }), T0 + 8 * HOUR)).toEqual(['a']);
    expect(due(node('a', { windows: span(T0 + 7 * HOUR, T0 + 8 * HOUR, 'skip') }), T0 + 7 * HOUR + MIN)).toEqual([]);
    expect(due(node('a', { windows: span(T0 + 7 * HOUR, T0 + 8 * HOUR, 'skip') }), T0 + 8 * HOUR)).toEqual(['a']); // the window is over: the overdue slot is not held any more
  });

  it('windows of the node that do not hold the slot change nothing', () => {
    const n = node('a', { windows: span(T0 + 7 * HOUR, T0 + 8 * HOUR, 'skip') });
    expect(due(n, T0 + 6 * HOUR)).toEqual(['a']);
  });
});

describe('maintenance windows in the orchestrator shell', () => {
  it('the schedule view says maintenance (with the window and its rule) and the tick issues nothing; after the window it runs', async () => {
    let now = T0 + 6 * HOUR;
    const state = createFleetState();
    let seq = 0;
    const put = (e: Omit<Envelope, 'v' | 'seq' | 'id'>) => applyEnvelope(state, { v: 1, seq: ++seq, id: `e${seq}`, ...e } as Envelope);
    put({ ts: new Date(T0).toISOString(), kind: 'enrollment', node_id: 'a', author: 'a', body: { action: 'request', token_id: 't', hostname: 'a', os_profile: 'debian', public_key: '00'.repeat(32), key_id: 'k', agent_version: '1', facts: {}, auto_approved: true } });
    put({ ts: new Date(now).toISOString(), kind: 'heartbeat', node_id: 'a', author: 'a', body: heartbeatBody('a') as never });
    put({ ts: new Date(now).toISOString(), kind: 'maintenance', node_id: 'a', author: 'op', body: { event: 'started', window_id: 'mw-1', target: { node_id: 'a' }, reason: 'r', starts_at: new Date(now).toISOString(), ends_at: new Date(now + HOUR).toISOString(), scans: 'defer' } });
    const issued: string[] = [];
    const o = createOrchestrator({
      state,
      commands: { issue: async (req) => (issued.push(req.nodeId), { id: 'c1', issued_at: new Date(now).toISOString() }) as never },
      schedule: SIX_H,
      statusPolicy: { heartbeatIntervalMs: 3_600_000 },
      now: () => new Date(now),
      tickMs: TICK,
      random: half,
      log: { info: () => {}, warn: () => {}, error: () => {} },
    });
    expect(o.view()[0]!.runs[0]).toMatchObject({ state: 'maintenance', maintenance: { window_id: 'mw-1', scans: 'defer', until: new Date(T0 + 7 * HOUR).toISOString() }, next_run_at: new Date(T0 + 7 * HOUR).toISOString() });
    expect(await o.tick()).toEqual([]);
    now = T0 + 7 * HOUR;
    await o.tick();
    expect(issued).toEqual(['a']);
  });
});

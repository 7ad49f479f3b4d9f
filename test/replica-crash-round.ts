/**
 * One kill -9 round on a set of replicas: signed heartbeats (with ids) and notes (with an Idempotency-Key) go to
 * random live replicas while one of them (`pick`, default random; the leader or not) is killed with SIGKILL at a
 * random moment; the load goes on against the others, then the killed one is started again (replaying the
 * database). Then: every acknowledged envelope is stored exactly once, the seqs are gapless, and every replica's
 * state equals the restarted one's (a fresh replay), and an SSE client that was on the killed replica resumes on
 * another with Last-Event-ID and misses nothing.
 *
 * Leadership (the replicas run with a short `--leader-takeover-secs` and `--ledger-head-secs`, `leader`): right
 * after the kill a command and a scan (one leaf in each ledger) are appended on a surviving replica; when the
 * leader was the one killed, the survivors are watched for the new leader (the takeover time). After convergence:
 * exactly one live replica leads, the same one as before when a follower was killed; the leader's signed heads
 * cover both ledgers, within takeover + one head interval of the kill, and every replica serves those heads; and
 * `vaultmesh ledger export` of the database passes `vaultmesh ledger verify` (both ledgers). Used by the default
 * suite (a few rounds) and the reliability suite (20).
 */
import { join } from 'node:path';
import { expect } from 'vitest';
import type { KeyPair } from '../protocol/keys.js';
import { CLI_BIN, runNode } from './process-helpers.js';
import { agentCall, call, heartbeat, openStream, scanBody, sql, type ReplicaSet } from './replicas.js';

export interface ReplicaRoundResult {
  acked: number;
  killed: number;
  lost: number;
  duplicated: number;
  head: number;
  /** The replica leading when the round began. */
  leader: number;
  leaderKilled: boolean;
  /** Kill of the leader → first survivor reporting `role: leader` (ms); undefined when a follower was killed. */
  takeoverMs?: number;
  /** Kill → a signed head covering the leaves appended after the kill, in both ledgers (ms). */
  headMs?: number;
}

/** The leadership bounds the replicas run with (`--leader-takeover-secs`, `--ledger-head-secs`), in ms. */
export interface LeaderBounds {
  takeoverMs: number;
  headMs: number;
  /** Scheduling slack on a loaded machine, on top of the bounds (default 4000). */
  slackMs?: number;
}

/** The `--leader-takeover-secs 1 --ledger-head-secs 1` the replica suites run with. */
export const LEADER_ARGS = ['--leader-takeover-secs', '1', '--ledger-head-secs', '1'];
export const LEADER_BOUNDS: LeaderBounds = { takeoverMs: 1000, headMs: 1000 };

/** Hook for further checks after the replicas converged and the leader checks passed. */
export type AfterRound = (set: ReplicaSet, round: number, killed: number) => Promise<void>;

/** `pick(leader, count)`: the replica to kill, given the one leading now. */
export type Pick = (leader: number, count: number) => number;

export const randomVictim: Pick = (_leader, count) => Math.floor(Math.random() * count);
export const killLeader: Pick = (leader) => leader;
export const killFollower: Pick = (leader, count) => (leader + 1 + Math.floor(Math.random() * (count - 1))) % count;

const roles = (set: ReplicaSet) =>
  Promise.all(set.live().map(async (r) => ({ index: r.index, role: (await call(r.url, 'GET', '/healthz')).json.role as string })));

/** The one live replica that leads, once exactly one does (bounded). */
export async function soleLeader(set: ReplicaSet, timeoutMs = 10_000): Promise<number> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const now = await roles(set);
    const leaders = now.filter((r) => r.role === 'leader');
    if (leaders.length === 1 && now.every((r) => r.role === 'leader' || r.role === 'follower')) return leaders[0]!.index;
    if (Date.now() > end) throw new Error(`not exactly one leader: ${now.map((r) => `${r.index}:${r.role}`).join(', ')}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

const connectionError = (err: unknown) => {
  const code = (err as { code?: string }).code ?? '';
  return code.startsWith('UND_ERR') || code === 'ECONNRESET' || code === 'ECONNREFUSED' || code === 'EPIPE';
};

export async function replicaCrashRound(
  set: ReplicaSet,
  nodes: Array<{ id: string; key: KeyPair }>,
  round: number,
  opts: { loadMs?: number; workers?: number; pick?: Pick; leader?: LeaderBounds; afterRound?: AfterRound } = {},
): Promise<ReplicaRoundResult> {
  const acked: Array<{ author: string; id: string }> = [];
  const leader = await soleLeader(set);
  const victim = (opts.pick ?? randomVictim)(leader, set.count);
  // An SSE client on the replica about to die: after the kill it resumes on another with Last-Event-ID.
  const before = Number((await sql<{ max: string | null }>(set.dbUrl, 'SELECT max(seq) AS max FROM envelopes'))[0]!.max ?? 0);
  const dropped = await openStream(set.replicas[victim]!.url, set.token, before);
  let stop = false;
  let n = 0;
  const worker = async (w: number) => {
    while (!stop) {
      const live = set.live();
      const r = live[Math.floor(Math.random() * live.length)]!;
      const i = n++;
      try {
        if (i % 3 === 2) {
          const id = `r${round}-note-${w}-${i}`;
          const res = await call(r.url, 'POST', '/api/events', { kind: 'note', body: { text: id } }, { authorization: `Bearer ${set.token}`, 'idempotency-key': id });
          if (res.status === 201) acked.push({ author: 'admin', id });
          else throw new Error(`note on replica ${r.index}: ${res.status} ${JSON.stringify(res.json)}`);
        } else {
          const node = nodes[i % nodes.length]!;
          const id = `r${round}-hb-${w}-${i}`;
          const res = await agentCall(r.url, node, 'POST', '/api/agent/heartbeat', heartbeat(node.id, id));
          if (res.status === 200) acked.push({ author: `node:${node.id}`, id });
          else throw new Error(`heartbeat on replica ${r.index}: ${res.status} ${JSON.stringify(res.json)}`);
        }
      } catch (err) {
        // A request cut off by the kill was never acknowledged: not counted, and not retried.
        if (!(r.index === victim && connectionError(err))) throw err;
      }
    }
  };
  const workers = Array.from({ length: opts.workers ?? 4 }, (_, w) => worker(w));
  const settled = Promise.allSettled(workers);
  await new Promise((r) => setTimeout(r, 50 + Math.random() * (opts.loadMs ?? 400)));
  await set.kill9(victim);
  const killedAt = performance.now();
  const takeover = victim === leader ? watchTakeover(set, killedAt) : undefined;
  takeover?.catch(() => undefined); // awaited below
  // One leaf in each ledger appended after the kill (while no replica may lead yet): a new leader must sign over it.
  const appended = opts.leader ? await appendLeaves(set, nodes, round) : undefined;
  const deadline = opts.leader ? killedAt + (victim === leader ? opts.leader.takeoverMs : 0) + opts.leader.headMs + (opts.leader.slackMs ?? 4000) : 0;
  const headWatch = appended ? signedOver(set, appended.on, appended, deadline) : undefined;
  headWatch?.catch(() => undefined); // awaited below
  await new Promise((r) => setTimeout(r, 100 + Math.random() * 200)); // the others keep writing
  stop = true;
  const outcomes = await settled;
  const failed = outcomes.find((o) => o.status === 'rejected') as PromiseRejectedResult | undefined;
  if (failed) throw failed.reason;
  await set.spawn(victim);
  const head = await set.converge();

  const rows = await sql<{ author: string; id: string; n: number }>(
    set.dbUrl,
    `SELECT author, id, count(*)::int AS n FROM envelopes WHERE id LIKE $1 GROUP BY author, id`,
    [`r${round}-%`],
  );
  const stored = new Map(rows.map((r) => [`${r.author} ${r.id}`, r.n]));
  const lost = acked.filter((a) => !stored.has(`${a.author} ${a.id}`)).length;
  const duplicated = rows.filter((r) => r.n > 1).length;
  const seqs = await sql<{ n: number; max: string }>(set.dbUrl, 'SELECT count(*)::int AS n, max(seq) AS max FROM envelopes');
  expect([seqs[0]!.n, Number(seqs[0]!.max)]).toEqual([head, head]); // gapless: 1..head, each once
  // The restarted replica replayed the log: the others, which followed it live, must hold the same state.
  const digests = await Promise.all(set.replicas.map((r) => set.digest(r.index)));
  for (const d of digests.slice(1)) expect(d).toEqual(digests[victim]);
  expect((await call(set.replicas[victim]!.url, 'GET', '/healthz')).status).toBe(200);
  // The dropped SSE client, resumed on another replica from the last id it got, has every seq once, in order.
  await dropped.close();
  const other = set.live().find((r) => r.index !== victim)!;
  const resumed = await openStream(other.url, set.token, dropped.seqs.at(-1) ?? before);
  try {
    await resumed.waitFor(head);
    expect([...dropped.seqs, ...resumed.seqs.filter((q) => q <= head)], `round ${round}: SSE resumed on replica ${other.index}`).toEqual(Array.from({ length: head - before }, (_, i) => before + 1 + i));
  } finally {
    await resumed.close();
  }
  const result: ReplicaRoundResult = { acked: acked.length, killed: victim, lost, duplicated, head, leader, leaderKilled: victim === leader };
  if (opts.leader && appended && headWatch) {
    const bounds = opts.leader;
    if (takeover) result.takeoverMs = await takeover;
    result.headMs = (await headWatch) - killedAt;
    const now = await soleLeader(set);
    // Killing a follower does not move leadership (the restarted one waits as a follower).
    if (victim !== leader) expect(now, `round ${round}: leadership moved when a follower was killed`).toBe(leader);
    if (result.takeoverMs !== undefined) expect(result.takeoverMs, `round ${round}: takeover`).toBeLessThanOrEqual(bounds.takeoverMs + (bounds.slackMs ?? 4000));
    await sameHeads(set, now);
    await exportVerifies(set, round);
  }
  await opts.afterRound?.(set, round, victim);
  return result;
}

/** Resolves with the ms from `killedAt` to the first live replica reporting `role: leader` (bounded). */
async function watchTakeover(set: ReplicaSet, killedAt: number, timeoutMs = 15_000): Promise<number> {
  for (;;) {
    const now = await roles(set).catch(() => []);
    if (now.some((r) => r.role === 'leader')) return performance.now() - killedAt;
    if (performance.now() - killedAt > timeoutMs) throw new Error(`no leader within ${timeoutMs} ms of the leader's kill`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** A command and a scan, on a surviving replica (`on`): the tree sizes each ledger reaches with them. */
async function appendLeaves(set: ReplicaSet, nodes: Array<{ id: string; key: KeyPair }>, round: number): Promise<{ on: number; commands: number; scans: number }> {
  const live = set.live();
  const r = live[round % live.length]!;
  const node = nodes[round % nodes.length]!;
  const cmd = await call(r.url, 'POST', '/api/commands', { node_id: node.id, action: 'ping' }, { authorization: `Bearer ${set.token}` });
  if (cmd.status !== 201) throw new Error(`command on replica ${r.index}: ${cmd.status} ${JSON.stringify(cmd.json)}`);
  const scan = await agentCall(r.url, node, 'POST', '/api/agent/scan', scanBody(node.id, `r${round}-scan`));
  if (scan.status !== 200) throw new Error(`scan on replica ${r.index}: ${scan.status} ${JSON.stringify(scan.json)}`);
  const root = (await call(r.url, 'GET', '/api/ledger/root', undefined, { authorization: `Bearer ${set.token}` })).json;
  return { on: r.index, commands: root.commands.tree_size, scans: root.tree_size };
}

/**
 * The heads replica `i` serves. A replica that answers with an error for a moment (busy, just restarted) is asked
 * again; the callers' deadlines bound the waiting.
 */
const rootOf = async (set: ReplicaSet, i: number) => {
  for (let tries = 0; ; tries++) {
    const res = await call(set.replicas[i]!.url, 'GET', '/api/ledger/root', undefined, { authorization: `Bearer ${set.token}` });
    if (res.status === 200) return res.json;
    if (tries >= 50) throw new Error(`replica ${i}: GET /api/ledger/root answered ${res.status} ${JSON.stringify(res.json)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
};

/**
 * Resolves with when (performance.now()) replica `on` first served signed heads covering `sizes` in both ledgers;
 * fails past `deadline`. A follower serves the heads the leader wrote to the database, so any survivor will do.
 */
async function signedOver(set: ReplicaSet, on: number, sizes: { commands: number; scans: number }, deadline: number): Promise<number> {
  for (;;) {
    const root = await rootOf(set, on);
    if ((root.head?.tree_size ?? 0) >= sizes.scans && (root.commands.head?.tree_size ?? 0) >= sizes.commands) return performance.now();
    if (performance.now() > deadline) {
      throw new Error(`no head over scans ${sizes.scans} / commands ${sizes.commands} in time: replica ${on} serves ${root.head?.tree_size} / ${root.commands.head?.tree_size}`);
    }
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Every live replica serves the heads the leader serves (once it has caught up with them; bounded). */
async function sameHeads(set: ReplicaSet, leader: number): Promise<void> {
  const lead = await rootOf(set, leader);
  const end = Date.now() + 10_000;
  for (const r of set.live()) {
    for (;;) {
      const other = await rootOf(set, r.index);
      const scans = other.head?.tree_size ?? 0;
      const commands = other.commands.head?.tree_size ?? 0;
      if (scans >= lead.head.tree_size && commands >= lead.commands.head.tree_size) {
        // The same signed heads, or later ones the leader signed meanwhile: compare at the leader's sizes.
        if (scans === lead.head.tree_size) expect(other.head).toEqual(lead.head);
        if (commands === lead.commands.head.tree_size) expect(other.commands.head).toEqual(lead.commands.head);
        break;
      }
      if (Date.now() > end) throw new Error(`replica ${r.index} does not serve the leader's heads (${scans} / ${commands})`);
      await new Promise((r) => setTimeout(r, 10));
    }
  }
}

/** `vaultmesh ledger export` of the database, then `vaultmesh ledger verify` on both ledgers. */
async function exportVerifies(set: ReplicaSet, round: number): Promise<void> {
  const out = join(set.base, `export-${round}`);
  const exported = await runNode(CLI_BIN, ['ledger', 'export', '--database-url', set.dbUrl, '--out', out]);
  expect(exported.code, `ledger export: ${exported.stderr}`).toBe(0);
  for (const log of ['commands', 'scans']) {
    const verified = await runNode(CLI_BIN, ['ledger', 'verify', '--dir', out, '--log', log]);
    expect(verified.code, `ledger verify --log ${log}, round ${round}: ${verified.stdout}${verified.stderr}`).toBe(0);
  }
}

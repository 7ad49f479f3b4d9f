/**
 * One kill -9 round on a set of replicas: signed heartbeats (with ids) and notes (with an Idempotency-Key) go to
 * random live replicas while one of them, picked at random, is killed with SIGKILL at a random moment; the load
 * goes on against the others, then the killed one is started again (replaying the database). Then: every
 * acknowledged envelope is stored exactly once, the seqs are gapless, and every replica's state equals the
 * restarted one's (a fresh replay). Used by the default suite (a few rounds) and the reliability suite (20).
 */
import { expect } from 'vitest';
import type { KeyPair } from '../protocol/keys.js';
import { agentCall, call, heartbeat, sql, type ReplicaSet } from './replicas.js';

export interface ReplicaRoundResult {
  acked: number;
  killed: number;
  lost: number;
  duplicated: number;
  head: number;
}

/**
 * Hook for what a round checks after the replicas converged. TODO(h14b): leader assertions go here once the
 * leadership lock is merged: a new leader signs heads within the bound, and `vaultmesh ledger verify` passes on a
 * `vaultmesh ledger export` of the database.
 */
export type AfterRound = (set: ReplicaSet, round: number, killed: number) => Promise<void>;

const connectionError = (err: unknown) => {
  const code = (err as { code?: string }).code ?? '';
  return code.startsWith('UND_ERR') || code === 'ECONNRESET' || code === 'ECONNREFUSED' || code === 'EPIPE';
};

export async function replicaCrashRound(
  set: ReplicaSet,
  nodes: Array<{ id: string; key: KeyPair }>,
  round: number,
  opts: { loadMs?: number; workers?: number; afterRound?: AfterRound } = {},
): Promise<ReplicaRoundResult> {
  const acked: Array<{ author: string; id: string }> = [];
  const victim = Math.floor(Math.random() * set.count);
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
  await opts.afterRound?.(set, round, victim);
  return { acked: acked.length, killed: victim, lost, duplicated, head };
}

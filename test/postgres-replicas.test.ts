// Several vaultmesh-cc processes on one PostgreSQL database, every one accepting writes (docs/SCALING.md): they
// converge on the same state, equal to a fresh replay; one-time rules hold across them, enforced by the database;
// and a replica killed with -9 under load loses nothing acknowledged.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateKeyPair } from '../protocol/keys.js';
import { assertBuilt } from './process-helpers.js';
import { cleanupAfterEach, tempDir } from './helpers.js';
import { requirePostgres, startPostgres, type TestPostgres } from './postgres.js';
import { agentCall, call, enrollBody, enrollNode, heartbeat, openStream, percentile, ReplicaSet, scanBody, send, signedRequest, sql } from './replicas.js';
import { killFollower, killLeader, LEADER_ARGS, LEADER_BOUNDS, replicaCrashRound } from './replica-crash-round.js';

const onCleanup = cleanupAfterEach();

describe.skipIf(!requirePostgres('replicas on PostgreSQL'))('replicas on PostgreSQL', () => {
  let server: TestPostgres;
  beforeAll(async () => {
    assertBuilt();
    server = await startPostgres();
  });
  afterAll(() => server?.stop());

  async function replicas(count: number, running = count, extraArgs: string[] = []): Promise<ReplicaSet> {
    const t = tempDir('vm-replicas-');
    onCleanup(t.cleanup);
    const set = new ReplicaSet(await server.newDatabase(), t.dir, count, extraArgs);
    onCleanup(() => set.stop());
    await set.start(running);
    return set;
  }

  it('three replicas take mixed writes and converge on the same state, equal to a fresh replay; commands reach agents polling another replica within 1 s; SSE resumes on another replica', async () => {
    const set = await replicas(4, 3); // the fourth starts after the load: a fresh replay
    const nodes = [];
    for (let k = 0; k < 6; k++) nodes.push(await enrollNode(set, k % 3, `node-${k}`));
    await set.converge();

    const streams = await Promise.all([0, 1, 2].map((i) => openStream(set.replicas[i]!.url, set.token)));
    onCleanup(() => Promise.all(streams.map((s) => s.close())));
    const resumer = await openStream(set.replicas[0]!.url, set.token);
    const firstSeq = (await set.head()) + 1;

    // Mixed load on all three (bounded: 6 workers × 40 requests, 8 s): heartbeats, scans, notes, commands.
    const acked: Array<{ author: string; id: string }> = [];
    const lagSeqs: number[] = [];
    let loading = true;
    const sampler = (async () => {
      while (loading) {
        const head = await set.head();
        const seqs = await Promise.all([0, 1, 2].map(async (i) => (await call(set.replicas[i]!.url, 'GET', '/healthz')).json.seq as number));
        for (const s of seqs) lagSeqs.push(Math.max(0, head - s));
        await new Promise((r) => setTimeout(r, 20));
      }
    })();
    const end = Date.now() + 8000;
    const worker = async (w: number) => {
      for (let i = 0; i < 40 && Date.now() < end; i++) {
        const r = (w + i) % 3;
        const url = set.replicas[r]!.url;
        // Nodes 0-2 carry the long-poll probes below: load commands go to nodes 3-5 only.
        const node = nodes[(w * 7 + i) % 6]!;
        const id = `w${w}-${i}`;
        let res;
        switch (i % 4) {
          case 0:
            res = await agentCall(url, node, 'POST', '/api/agent/heartbeat', heartbeat(node.id, `hb-${id}`));
            expect(res.status).toBe(200);
            acked.push({ author: `node:${node.id}`, id: `hb-${id}` });
            break;
          case 1:
            res = await agentCall(url, node, 'POST', '/api/agent/scan', scanBody(node.id, `scan-${id}`));
            expect(res.status).toBe(200);
            acked.push({ author: `node:${node.id}`, id: `scan-${id}` });
            break;
          case 2:
            res = await set.api(r, 'POST', '/api/events', { kind: 'note', body: { text: id } }, { 'idempotency-key': `note-${id}` });
            expect(res.status).toBe(201);
            acked.push({ author: 'admin', id: `note-${id}` });
            break;
          default:
            res = await set.api(r, 'POST', '/api/commands', { node_id: nodes[3 + (i % 3)]!.id, action: 'ping' });
            expect(res.status, JSON.stringify(res.json)).toBe(201);
        }
        if (w === 0 && i === 20) {
          // Half-way: the SSE client drops off replica 0 and will come back on replica 1.
          await resumer.close();
        }
      }
    };

    // Long-poll probes: node k polls replica k, the command is issued on replica k+1.
    const probe = async (k: number) => {
      const node = nodes[k]!;
      const polled = agentCall(set.replicas[k]!.url, node, 'GET', '/api/agent/commands?wait=10');
      await new Promise((r) => setTimeout(r, 300)); // the poll is waiting
      const issued = await set.api((k + 1) % 3, 'POST', '/api/commands', { node_id: node.id, action: 'ping' });
      expect(issued.status).toBe(201);
      const t0 = performance.now();
      const got = await polled;
      const ms = performance.now() - t0;
      expect(got.status).toBe(200);
      expect(got.json.commands.map((c: { payload: { id: string } }) => c.payload.id)).toEqual([issued.json.id]);
      return ms;
    };
    const [, pollMs] = await Promise.all([Promise.all(Array.from({ length: 6 }, (_, w) => worker(w))), Promise.all([0, 1, 2].map(probe))]);
    loading = false;
    await sampler;
    for (const ms of pollMs) expect(ms).toBeLessThan(1000);

    const head = await set.converge();
    // Gapless, each acknowledged envelope stored once, no (author, id) stored twice.
    expect(await sql(set.dbUrl, 'SELECT count(*)::int AS n, max(seq)::int AS max FROM envelopes')).toEqual([{ n: head, max: head }]);
    const rows = await sql<{ author: string; id: string; n: number }>(set.dbUrl, 'SELECT author, id, count(*)::int AS n FROM envelopes GROUP BY author, id');
    expect(rows.filter((r) => r.n > 1)).toEqual([]);
    const stored = new Set(rows.map((r) => `${r.author} ${r.id}`));
    expect(acked.filter((a) => !stored.has(`${a.author} ${a.id}`))).toEqual([]);

    // The same state on every replica, and on a fresh one that replays the database now.
    await set.spawn(3);
    await set.converge();
    const digests = await Promise.all([0, 1, 2, 3].map((i) => set.digest(i)));
    for (const d of digests.slice(1)) expect(d).toEqual(digests[0]);

    // Every live stream saw every seq once, in order.
    for (const s of streams) {
      await s.waitFor(head);
      expect(s.seqs.filter((q) => q >= firstSeq)).toEqual(Array.from({ length: head - firstSeq + 1 }, (_, i) => firstSeq + i));
    }
    // The dropped client resumes on replica 1 from its last id and misses nothing.
    const lastId = resumer.seqs.at(-1)!;
    expect(lastId).toBeGreaterThanOrEqual(firstSeq);
    const resumed = await openStream(set.replicas[1]!.url, set.token, lastId);
    onCleanup(() => resumed.close());
    await resumed.waitFor(head);
    expect([...resumer.seqs.filter((q) => q >= firstSeq), ...resumed.seqs]).toEqual(Array.from({ length: head - firstSeq + 1 }, (_, i) => firstSeq + i));

    // Tail lag: per seq, from the first replica that published it on SSE to the last.
    const lagMs: number[] = [];
    for (let q = firstSeq; q <= head; q++) {
      const times = streams.map((s) => s.arrived.get(q)!);
      lagMs.push(Math.max(...times) - Math.min(...times));
    }
    console.log(
      `replicas: ${head - firstSeq + 1} envelopes under mixed load; tail lag p50 ${percentile(lagMs, 50).toFixed(1)} ms, p99 ${percentile(lagMs, 99).toFixed(1)} ms; ` +
        `lag in seqs (sampled) p50 ${percentile(lagSeqs, 50)}, p99 ${percentile(lagSeqs, 99)}; command to a long-poll on another replica ${pollMs.map((m) => m.toFixed(0)).join(', ')} ms`,
    );
  });

  it('one-time rules hold across replicas: a 1-use join token, one enrollment per node id, request nonces, Idempotency-Keys, envelope ids and scan ids, enrollment decisions', async () => {
    const set = await replicas(3);
    const urls = set.replicas.map((r) => r.url);

    // A 1-use join token raced on three replicas by three nodes: exactly one enrollment.
    const tok = await set.api(0, 'POST', '/api/join-tokens', { uses: 1 });
    await set.converge();
    const racers = [0, 1, 2].map((i) => ({ id: `racer-${i}`, key: generateKeyPair() }));
    const raced = await Promise.all(racers.map((n, i) => agentCall(urls[i]!, n, 'POST', '/api/agent/enroll', enrollBody(n.id, n.key, tok.json.token))));
    expect(raced.map((r) => r.status).sort()).toEqual([202, 401, 401]);
    for (const r of raced.filter((x) => x.status === 401)) expect(r.json.error.code).toBe('JOIN_TOKEN_USED_UP');
    const requests = await sql(set.dbUrl, "SELECT count(*)::int AS n FROM envelopes WHERE kind = 'enrollment' AND convert_from(line, 'UTF8') LIKE '%' || $1 || '%'", [tok.json.token_id]);
    expect(requests).toEqual([{ n: 1 }]);

    // One node id enrolled with two tokens and two keys on two replicas at once: one enrollment, the other NODE_EXISTS.
    const toks = await Promise.all([set.api(0, 'POST', '/api/join-tokens', { uses: 5 }), set.api(1, 'POST', '/api/join-tokens', { uses: 5 })]);
    await set.converge();
    const twins = [generateKeyPair(), generateKeyPair()].map((key) => ({ id: 'twin', key }));
    const both = await Promise.all(twins.map((n, i) => agentCall(urls[i]!, n, 'POST', '/api/agent/enroll', enrollBody('twin', n.key, toks[i]!.json.token))));
    expect(both.map((r) => r.status).sort()).toEqual([202, 409]);
    expect(both.find((r) => r.status === 409)!.json.error.code).toBe('NODE_EXISTS');
    expect(await sql(set.dbUrl, "SELECT count(*)::int AS n FROM envelopes WHERE kind = 'enrollment' AND node_id = 'twin'")).toEqual([{ n: 1 }]);

    // Enrolled and approved on replica 0, heartbeating on replica 2 at once: replica 2 catches up instead of UNKNOWN_NODE.
    const node = await enrollNode(set, 0, 'web-01');
    const first = await agentCall(urls[2]!, node, 'POST', '/api/agent/heartbeat', heartbeat(node.id, 'hb-first'));
    expect(first.status, JSON.stringify(first.json)).toBe(200);

    // The very same signed request sent to two replicas: the second is a replay.
    const req = signedRequest(node, 'POST', '/api/agent/heartbeat', heartbeat(node.id, 'hb-replayed'));
    const replayed = await Promise.all([send(urls[0]!, req), send(urls[1]!, req)]);
    expect(replayed.map((r) => r.status).sort()).toEqual([200, 401]);
    expect(replayed.find((r) => r.status === 401)!.json.error.code).toBe('REPLAYED_REQUEST');
    expect((await send(urls[2]!, req)).json.error.code).toBe('REPLAYED_REQUEST');

    // One heartbeat id sent (signed afresh) to all three: one envelope; the others answer duplicate with its seq.
    const dup = await Promise.all(urls.map((u) => agentCall(u, node, 'POST', '/api/agent/heartbeat', heartbeat(node.id, 'hb-dup'))));
    expect(dup.map((r) => r.status)).toEqual([200, 200, 200]);
    expect(dup.map((r) => r.json.duplicate).sort()).toEqual([false, true, true]);
    expect(new Set(dup.map((r) => r.json.seq)).size).toBe(1);

    // One Idempotency-Key on POST /api/events to all three: one envelope.
    const notes = await Promise.all([0, 1, 2].map((i) => set.api(i, 'POST', '/api/events', { kind: 'note', body: { text: 'once' } }, { 'idempotency-key': 'note-once' })));
    expect(notes.map((r) => r.status).sort()).toEqual([200, 200, 201]);
    expect(new Set(notes.map((r) => r.json.seq)).size).toBe(1);

    // One Idempotency-Key on POST /api/commands to all three: one signed command, answered to all.
    const cmds = await Promise.all([0, 1, 2].map((i) => set.api(i, 'POST', '/api/commands', { node_id: node.id, action: 'ping' }, { 'idempotency-key': 'scan-once' })));
    expect(cmds.map((r) => r.status).sort()).toEqual([200, 200, 201]);
    expect(new Set(cmds.map((r) => r.json.id)).size).toBe(1);
    const rows = await sql<{ author: string; id: string; n: number }>(set.dbUrl, "SELECT author, id, count(*)::int AS n FROM envelopes WHERE id IN ('hb-dup', 'note-once') OR convert_from(line, 'UTF8') LIKE '%scan-once%' GROUP BY author, id");
    expect(rows.map((r) => r.n)).toEqual([1, 1, 1]);

    // One scan id from two nodes on two replicas at once: one report; the other 409 ID_CONFLICT (a ledger leaf id).
    const other = await enrollNode(set, 1, 'web-02');
    await set.converge();
    const scans = await Promise.all([agentCall(urls[0]!, node, 'POST', '/api/agent/scan', scanBody(node.id, 'scan-shared')), agentCall(urls[1]!, other, 'POST', '/api/agent/scan', scanBody(other.id, 'scan-shared'))]);
    expect(scans.map((r) => r.status).sort()).toEqual([200, 409]);
    expect(scans.find((r) => r.status === 409)!.json.error.code).toBe('ID_CONFLICT');
    expect(await sql(set.dbUrl, "SELECT count(*)::int AS n FROM envelopes WHERE id = 'scan-shared'")).toEqual([{ n: 1 }]);

    // Two operators approving and rejecting one pending node on two replicas at once: one decision.
    const pendingTok = await set.api(0, 'POST', '/api/join-tokens', { uses: 1 });
    const pending = { id: 'pending-01', key: generateKeyPair() };
    expect((await agentCall(urls[0]!, pending, 'POST', '/api/agent/enroll', enrollBody(pending.id, pending.key, pendingTok.json.token))).status).toBe(202);
    await set.converge();
    const decided = await Promise.all([set.api(1, 'POST', '/api/nodes/pending-01/approve'), set.api(2, 'POST', '/api/nodes/pending-01/reject')]);
    expect(decided.map((r) => r.status).sort()).toEqual([200, 409]);
    expect(await sql(set.dbUrl, "SELECT count(*)::int AS n FROM envelopes WHERE kind = 'enrollment' AND node_id = 'pending-01'")).toEqual([{ n: 2 }]);
    await set.converge();
    const digests = await Promise.all([0, 1, 2].map((i) => set.digest(i)));
    expect(digests[1]).toEqual(digests[0]);
    expect(digests[2]).toEqual(digests[0]);
  });

  it('kill -9 the leader, then a follower, under mixed load, restart it: nothing acknowledged lost or duplicated, seqs gapless, every replica equal to a fresh replay; one leader, which signs heads over leaves appended after the kill; the export verifies', async () => {
    const set = await replicas(3, 3, LEADER_ARGS);
    const nodes = [];
    for (let k = 0; k < 3; k++) nodes.push(await enrollNode(set, k, `crash-${k}`));
    await set.converge();
    const picks = [killLeader, killFollower];
    for (let round = 0; round < picks.length; round++) {
      const r = await replicaCrashRound(set, nodes, round, { pick: picks[round], leader: LEADER_BOUNDS });
      expect(r.acked).toBeGreaterThan(0);
      expect([r.lost, r.duplicated]).toEqual([0, 0]);
      expect(r.leaderKilled).toBe(round === 0);
      if (r.leaderKilled) expect(r.takeoverMs).toBeDefined();
      expect(r.headMs).toBeGreaterThan(0);
    }
  });
});

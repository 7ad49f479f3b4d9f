// Offline and rejoin on several replicas of one PostgreSQL database: only the leader declares, each outage is
// journaled once — also when the leader is killed with -9 and another takes over with the outage already declared,
// and when a replica starts afresh by replaying the log — and the rejoin comes through whichever replica the agent
// reaches.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assertBuilt } from './process-helpers.js';
import { cleanupAfterEach, heartbeatBody, tempDir } from './helpers.js';
import { requirePostgres, startPostgres, type TestPostgres } from './postgres.js';
import { agentCall, call, enrollNode, ReplicaSet, sql } from './replicas.js';

const onCleanup = cleanupAfterEach();

async function until<T>(probe: () => Promise<T | undefined>, ms: number, what: string): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe.skipIf(!requirePostgres('outages on PostgreSQL replicas'))('offline and rejoin on PostgreSQL replicas', () => {
  let server: TestPostgres;
  beforeAll(async () => {
    assertBuilt();
    server = await startPostgres();
  });
  afterAll(() => server?.stop());

  it('one offline and one rejoin per outage across replicas, a leader killed with -9, and a fresh replica', async () => {
    const t = tempDir('vm-outage-replicas-');
    onCleanup(t.cleanup);
    // Heartbeats expected every second, offline after 2 s of silence, swept every second; takeover within 1 s.
    const set = new ReplicaSet(await server.newDatabase(), t.dir, 3, ['--heartbeat-secs', '1', '--stale-crit-after', '2', '--attention-check-secs', '1', '--leader-takeover-secs', '1']);
    onCleanup(() => set.stop());
    await set.start(3);
    const urls = () => set.replicas.map((r) => r.url);
    const node = await enrollNode(set, 0, 'edge-1');
    for (let i = 0; i < 3; i++) {
      const r = await agentCall(urls()[i]!, node, 'POST', '/api/agent/heartbeat', { ...heartbeatBody(node.id, { id: `hb-${i}` }), outbox: { queued: 0, delivered: 0 } });
      expect(r.status, JSON.stringify(r.json)).toBe(200);
    }
    const lastSeq = Number((await sql<{ seq: string }>(set.dbUrl, "SELECT max(seq) AS seq FROM envelopes WHERE kind = 'heartbeat' AND node_id = 'edge-1'"))[0]!.seq);
    const rows = (kind: string) => sql<{ seq: string; id: string; author: string; body: string }>(set.dbUrl, "SELECT seq, id, author, convert_from(line, 'UTF8') AS body FROM envelopes WHERE kind = $1 AND node_id = 'edge-1' ORDER BY seq", [kind]);

    const offline = await until(async () => ((await rows('offline')).length ? (await rows('offline'))[0] : undefined), 15_000, 'the offline envelope');
    expect(offline).toMatchObject({ id: `offline:edge-1:${lastSeq}`, author: 'system:outages' });
    expect(JSON.parse(offline.body).body).toMatchObject({ last_heartbeat_seq: lastSeq, threshold_s: 2, declared_late: false });

    // Kill the leader with -9; another takes over with the outage already declared (by the dead one): no second.
    const roles = await Promise.all(set.live().map(async (r) => ({ index: r.index, role: (await call(r.url, 'GET', '/healthz')).json.role as string })));
    const leader = roles.find((r) => r.role === 'leader')!.index;
    await set.kill9(leader);
    await until(
      async () => {
        const now = await Promise.all(set.live().map(async (r) => (await call(r.url, 'GET', '/healthz')).json.role as string));
        return now.includes('leader') ? true : undefined;
      },
      15_000,
      'a new leader',
    );
    await new Promise((r) => setTimeout(r, 3000)); // three sweeps of the new leader
    expect(await rows('offline')).toHaveLength(1);

    // Back through a follower: two buffered heartbeats, the second reporting the outbox drained.
    const live = set.live();
    const via = live.find((r) => r.index !== leader)!.url;
    for (const [i, report] of [[0, { queued: 1, delivered: 1 }], [1, { queued: 0, delivered: 2 }]] as const) {
      const r = await agentCall(via, node, 'POST', '/api/agent/heartbeat', { ...heartbeatBody(node.id, { id: `back-${i}` }), outbox: report });
      expect(r.status, JSON.stringify(r.json)).toBe(200);
    }
    // From here the node keeps heartbeating (every 300 ms: a slow rejoin or replica start-up is not a new outage).
    let beating = true;
    let beats = 0;
    const keepAlive = (async () => {
      while (beating) {
        await agentCall(via, node, 'POST', '/api/agent/heartbeat', { ...heartbeatBody(node.id, { id: `after-${beats++}` }), outbox: { queued: 0, delivered: 0 } });
        await new Promise((r) => setTimeout(r, 300));
      }
    })();
    try {
      const rejoin = await until(async () => (await rows('rejoin'))[0], 15_000, 'the rejoin envelope');
      expect(rejoin.id).toBe(`rejoin:edge-1:${offline.seq}`);
      expect(JSON.parse(rejoin.body).body).toMatchObject({ offline_seq: Number(offline.seq), last_heartbeat_seq: lastSeq, delivered: 2, outbox: 'drained' });

      // The killed replica starts again (replaying the log): nothing is declared twice, and every replica agrees the
      // node has no open outage.
      await set.spawn(leader);
      await set.converge();
      await new Promise((r) => setTimeout(r, 1500));
      await set.converge();
      expect(await rows('offline')).toHaveLength(1);
      expect(await rows('rejoin')).toHaveLength(1);
      for (const r of set.live()) expect((await set.api(r.index, 'GET', '/api/nodes/edge-1')).json.outage).toBeNull();
    } finally {
      beating = false;
      await keepAlive;
    }
    expect(beats).toBeGreaterThan(3);
  }, 120_000);
});

// Agent key rotation on replicas sharing one PostgreSQL database: a rotation journaled on one replica is honoured
// on another at once (it catches up before refusing the new key), a rotation of one key raced on two replicas with
// two different new keys journals one (the other is KEY_ROTATION_CONFLICT), and after the overlap the old key gets
// NODE_KEY_ROTATED on every replica.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateKeyPair } from '../protocol/keys.js';
import { signRotation } from '../protocol/node-key-rotation.js';
import { assertBuilt } from './process-helpers.js';
import { cleanupAfterEach, tempDir } from './helpers.js';
import { requirePostgres, startPostgres, type TestPostgres } from './postgres.js';
import { agentCall, enrollNode, heartbeat, ReplicaSet, sql } from './replicas.js';

const onCleanup = cleanupAfterEach();

describe.skipIf(!requirePostgres('agent key rotation on PostgreSQL replicas'))('agent key rotation on PostgreSQL replicas', { timeout: 180_000 }, () => {
  let server: TestPostgres;
  beforeAll(async () => {
    assertBuilt();
    server = await startPostgres();
  });
  afterAll(() => server?.stop());

  it('is honoured on another replica at once, one-time across replicas, and refuses the old key everywhere after the overlap', async () => {
    const t = tempDir('vm-key-replicas-');
    onCleanup(t.cleanup);
    // No overlap: the old key is refused as soon as a replica has applied the rotation.
    const set = new ReplicaSet(await server.newDatabase(), t.dir, 2, ['--node-key-overlap-secs', '0']);
    onCleanup(() => set.stop());
    await set.start();
    const [a, b] = set.replicas.map((r) => r.url) as [string, string];
    const node = await enrollNode(set, 0, 'rot-01');
    await set.converge();

    // Rotated on A; B is asked with the new key right away: it catches up instead of answering UNKNOWN_NODE.
    const next = { id: node.id, key: generateKeyPair() };
    const rotated = await agentCall(a, node, 'POST', '/api/agent/rotate-key', signRotation(node.id, node.key, next.key, new Date()));
    expect(rotated.status, JSON.stringify(rotated.json)).toBe(200);
    const onB = await agentCall(b, next, 'POST', '/api/agent/heartbeat', heartbeat(node.id, 'hb-new-key-on-b'));
    expect(onB.status, JSON.stringify(onB.json)).toBe(200);
    // B has applied it now: the old key is refused there with the clear code.
    const oldOnB = await agentCall(b, node, 'POST', '/api/agent/heartbeat', heartbeat(node.id, 'hb-old-key-on-b'));
    expect(oldOnB.status).toBe(401);
    expect(oldOnB.json.error.code).toBe('NODE_KEY_ROTATED');
    expect(oldOnB.json.error.message).toContain(`replaced by ${next.key.keyId}`);

    // The next key rotated twice at once, to two different keys, on A and B: one rotation, the other a conflict.
    const [c1, c2] = [generateKeyPair(), generateKeyPair()];
    const raced = await Promise.all([
      agentCall(a, next, 'POST', '/api/agent/rotate-key', signRotation(node.id, next.key, c1, new Date())),
      agentCall(b, next, 'POST', '/api/agent/rotate-key', signRotation(node.id, next.key, c2, new Date())),
    ]);
    // The loser is a conflict when both requests were checked before either rotation was applied (the claim decides);
    // with no overlap, a replica that applied the winner first refuses the replaced key itself: NODE_KEY_ROTATED.
    const loser = raced.find((r) => r.status !== 200);
    expect(raced.filter((r) => r.status === 200)).toHaveLength(1);
    expect([`409 KEY_ROTATION_CONFLICT`, `401 NODE_KEY_ROTATED`]).toContain(`${loser?.status} ${loser?.json.error?.code}`);
    expect(await sql(set.dbUrl, "SELECT count(*)::int AS n FROM envelopes WHERE kind = 'node_key' AND node_id = 'rot-01'")).toEqual([{ n: 2 }]);
    const winner = raced.find((r) => r.status === 200)!.json.new_key_id as string;

    await set.converge();
    const digests = await Promise.all([0, 1].map((i) => set.digest(i)));
    expect(digests[1]).toEqual(digests[0]);
    for (const i of [0, 1]) {
      const n = (await set.api(i, 'GET', '/api/nodes/rot-01')).json;
      expect(n.key_id).toBe(winner);
      expect(n.key_rotations).toHaveLength(2);
    }
  });
});

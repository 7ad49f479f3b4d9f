import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { cleanupAfterEach, quietLogger } from '../../test/helpers.js';
import { requirePostgres, startPostgres, type TestPostgres } from '../../test/postgres.js';
import { migrate } from '../../lib/postgres-schema.js';
import { generateKeyPair } from '../../protocol/keys.js';
import { signTreeHead, type ChainEntry } from '../../protocol/ledger-files.js';
import { canonicalJson } from '../../protocol/canonical-json.js';
import { isVaultMeshError } from '../../protocol/errors.js';
import { createPostgresLeadership, type PostgresLeadership } from './postgres-leadership.js';
import { createPostgresHeads, FENCED_HEAD_INSERT } from './postgres-heads.js';

const onCleanup = cleanupAfterEach();

async function until(cond: () => boolean, ms: number): Promise<number> {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > ms) throw new Error(`not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 10));
  }
  return Date.now() - t0;
}

const key = generateKeyPair();
function entry(size: number): { entry: ChainEntry; line: string } {
  const head = signTreeHead({ tree_size: size, root_hash: 'ab'.repeat(32), timestamp: new Date(0).toISOString(), previous_head_hash: null, key_id: key.keyId }, key);
  const e: ChainEntry = { head, public_key: key.publicKeyHex, consistency_proof: [] };
  return { entry: e, line: canonicalJson(e) };
}

describe.skipIf(!requirePostgres('leadership on PostgreSQL'))('leadership on PostgreSQL', () => {
  let server: TestPostgres;
  beforeAll(async () => {
    server = await startPostgres();
  });
  afterAll(() => server?.stop());

  async function database(): Promise<string> {
    const url = await server.newDatabase();
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    await migrate(c);
    await c.end();
    return url;
  }

  function contender(url: string, takeoverMs = 200): PostgresLeadership & { events: boolean[] } {
    const l = createPostgresLeadership({ url, log: quietLogger, takeoverMs });
    const events: boolean[] = [];
    l.onChange((v) => events.push(v));
    onCleanup(() => l.close());
    l.start();
    return Object.assign(l, { events });
  }

  it('three contenders: exactly one leads; when it goes, another leads within the takeover period, with a higher term', async () => {
    const url = await database();
    const all = [contender(url), contender(url), contender(url)];
    await until(() => all.some((l) => l.isLeader), 3000);
    await new Promise((r) => setTimeout(r, 600)); // three more rounds each: nobody else may take it
    expect(all.filter((l) => l.isLeader)).toHaveLength(1);
    const first = all.find((l) => l.isLeader)!;
    expect([first.role, first.term, first.events]).toEqual(['leader', 1, [true]]);
    for (const f of all.filter((l) => l !== first)) expect([f.role, f.term, f.events]).toEqual(['follower', 0, []]);

    await first.close();
    expect([first.isLeader, first.events]).toEqual([false, [true, false]]);
    const took = await until(() => all.some((l) => l !== first && l.isLeader), 2000);
    expect(took).toBeLessThan(1000); // the period is 200 ms; generous for a shared machine
    expect(all.filter((l) => l.isLeader)).toHaveLength(1);
    expect(all.find((l) => l.isLeader)!.term).toBe(2);
  });

  it('a lost lock connection deposes the leader at once, and another takes over', async () => {
    const url = await database();
    const a = contender(url);
    await until(() => a.isLeader, 3000);
    const b = contender(url);
    await new Promise((r) => setTimeout(r, 300));
    expect(b.isLeader).toBe(false);
    const pid = (await a.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
    const admin = new pg.Client({ connectionString: url });
    await admin.connect();
    onCleanup(() => admin.end());
    await admin.query('SELECT pg_terminate_backend($1)', [pid]);
    await until(() => a.events.length >= 2, 2000);
    expect(a.events.slice(0, 2)).toEqual([true, false]);
    // The lock went with the session: b, or a on a new connection, leads again, under the next term.
    await until(() => a.isLeader || b.isLeader, 2000);
    await new Promise((r) => setTimeout(r, 500));
    expect([a, b].filter((l) => l.isLeader).map((l) => l.term)).toEqual([2]);
  });

  it('fencing: the head insert lands only from the session holding the lock, with the current term and the next index', async () => {
    const url = await database();
    const leader = contender(url);
    await until(() => leader.isLeader, 3000);
    const follower = contender(url);
    await new Promise((r) => setTimeout(r, 300));
    const e1 = entry(1);
    const params = (idx: number, term: number) => ['scans', idx, term, e1.entry.head.tree_size, e1.entry.head.root_hash, e1.line, ...leader.lockKey];

    // Another session (no lock), with the right term: nothing.
    const other = new pg.Client({ connectionString: url });
    await other.connect();
    onCleanup(() => other.end());
    expect((await other.query(FENCED_HEAD_INSERT, params(0, leader.term))).rowCount).toBe(0);
    // The follower's connection: nothing either.
    expect((await follower.query(FENCED_HEAD_INSERT, params(0, leader.term))).rowCount).toBe(0);
    // The leader with an old term (as after a newer leader raised it): nothing.
    expect((await leader.query(FENCED_HEAD_INSERT, params(0, leader.term - 1))).rowCount).toBe(0);
    // The leader, its term, the next index: one row; the same index again, or one past the next: nothing.
    expect((await leader.query(FENCED_HEAD_INSERT, params(0, leader.term))).rowCount).toBe(1);
    expect((await leader.query(FENCED_HEAD_INSERT, params(2, leader.term))).rowCount).toBe(0);
    expect((await leader.query(FENCED_HEAD_INSERT, params(0, leader.term))).rowCount).toBe(0);

    // Through the head store: the follower is refused with NOT_LEADER before it asks; the leader writes.
    const e2 = entry(2);
    await expect(createPostgresHeads(follower).append('scans', 1, e2.entry, e2.line)).rejects.toSatisfy((err) => isVaultMeshError(err) && err.code === 'NOT_LEADER');
    await createPostgresHeads(leader).append('scans', 1, e2.entry, e2.line);
    expect(await createPostgresHeads(follower).lastIndex('scans')).toBe(1);
    expect((await createPostgresHeads(follower).since('scans', 0, 10)).map((r) => [r.index, r.line])).toEqual([
      [0, e1.line],
      [1, e2.line],
    ]);

    // A deposed leader whose process has not noticed yet (term raised under it): the database refuses its head.
    const admin = new pg.Client({ connectionString: url });
    await admin.connect();
    onCleanup(() => admin.end());
    await admin.query('UPDATE leader_term SET term = term + 1');
    const e3 = entry(3);
    await expect(createPostgresHeads(leader).append('scans', 2, e3.entry, e3.line)).rejects.toSatisfy((err) => isVaultMeshError(err) && err.code === 'NOT_LEADER');
    expect(await createPostgresHeads(follower).lastIndex('scans')).toBe(1);
  });
});

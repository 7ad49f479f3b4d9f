import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { cleanupAfterEach, quietLogger } from '../../test/helpers.js';
import { requirePostgres, startPostgres, type TestPostgres } from '../../test/postgres.js';
import { hb, note, scan, storeContract } from '../../test/store-contract.js';
import { canonicalJson } from '../../protocol/canonical-json.js';
import type { Committed } from './envelope-store.js';
import { createPostgresStore } from './postgres-store.js';
import { migrate, MIGRATIONS, SCHEMA_VERSION } from '../../lib/postgres-schema.js';

const onCleanup = cleanupAfterEach();

async function sql<T = Record<string, unknown>>(url: string, text: string, params: unknown[] = []): Promise<T[]> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return (await c.query(text, params)).rows as T[];
  } finally {
    await c.end();
  }
}

describe.skipIf(!requirePostgres('the PostgreSQL store'))('the PostgreSQL store', () => {
  let server: TestPostgres;
  beforeAll(async () => {
    server = await startPostgres();
  });
  afterAll(() => server?.stop());

  const open = async (url: string, commits: Committed[][] = []) => {
    const store = createPostgresStore({ url, log: quietLogger, onCommit: (b) => commits.push(b), connectTimeoutMs: 2000 });
    onCleanup(() => store.close());
    const replayed: Committed[] = [];
    await store.replay((e) => replayed.push(e));
    return { store, commits, replayed };
  };

  storeContract('PostgreSQL store', {
    newLocation: () => server.newDatabase(),
    create: (url, deps) => createPostgresStore({ url, log: quietLogger, ...deps }),
    onCleanup,
  });

  it('stores the exact canonical line bytes with the lookup columns, and the schema version', async () => {
    const url = await server.newDatabase();
    const { store } = await open(url);
    const committed = await store.append([scan(1), hb(2), note(3)]);
    const rows = await sql<{ seq: string; journal: string; kind: string; id: string; author: string; node_id: string | null; line: Buffer }>(url, 'SELECT seq, journal, kind, id, author, node_id, line FROM envelopes ORDER BY seq');
    expect(rows.map((r) => [Number(r.seq), r.journal, r.kind, r.id, r.author, r.node_id])).toEqual(committed.map((c) => [c.envelope.seq, c.journal, c.envelope.kind, c.envelope.id, c.envelope.author, c.envelope.node_id ?? null]));
    for (const [i, r] of rows.entries()) expect(r.line.equals(Buffer.from(canonicalJson(committed[i]!.envelope)))).toBe(true);
    expect(await sql(url, 'SELECT last_seq FROM log_head')).toEqual([{ last_seq: '3' }]);
    expect(await sql(url, 'SELECT max(version) AS version FROM schema_version')).toEqual([{ version: SCHEMA_VERSION }]);
  });

  it('migrate is idempotent, and a schema newer than the center is refused at start', async () => {
    const url = await server.newDatabase();
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    try {
      expect((await migrate(c)).applied.map((m) => m.version)).toEqual(MIGRATIONS.map((m) => m.version));
      expect(await migrate(c)).toEqual({ from: SCHEMA_VERSION, to: SCHEMA_VERSION, applied: [] });
      await c.query(`INSERT INTO schema_version (version, description) VALUES (${SCHEMA_VERSION + 1}, 'from the future')`);
    } finally {
      await c.end();
    }
    const store = createPostgresStore({ url, log: quietLogger, onCommit: () => {} });
    onCleanup(() => store.close());
    await expect(store.replay(() => {})).rejects.toMatchObject({ code: 'SCHEMA_TOO_NEW' });
  });

  it('a second center on the same database is refused while the first one runs, and can start after it stops', async () => {
    const url = await server.newDatabase();
    const first = await open(url);
    await first.store.append([note(1)]);
    const second = createPostgresStore({ url, log: quietLogger, onCommit: () => {} });
    onCleanup(() => second.close());
    await expect(second.replay(() => {})).rejects.toMatchObject({ code: 'CENTER_LOCKED' });
    await first.store.close();
    const third = await open(url);
    expect(third.replayed.map((e) => e.envelope.seq)).toEqual([1]);
  });

  it('a batch whose COMMIT landed but whose answer was lost is applied before the next append, so memory equals a replay', async () => {
    const url = await server.newDatabase();
    const { store, commits } = await open(url);
    await store.append([note(1)]);
    // What a lost COMMIT answer leaves behind: the row is stored, the center's connection is gone.
    const lost = { v: 1, id: 'lost-1', seq: 2, ts: '2025-03-01T00:00:00.000Z', kind: 'note', author: 'op', body: { i: 2 } };
    await sql(url, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'vaultmesh-cc' AND pid <> pg_backend_pid()");
    await sql(url, "INSERT INTO envelopes (seq, journal, kind, id, author, ts, line) VALUES (2, 'events', 'note', 'lost-1', 'op', now(), $1)", [Buffer.from(canonicalJson(lost))]);
    await sql(url, 'UPDATE log_head SET last_seq = 2');
    const [third] = await store.append([note(3)]);
    expect(third!.envelope.seq).toBe(3);
    expect(commits.flat().map((c) => c.envelope.id)).toEqual([expect.any(String), 'lost-1', third!.envelope.id]);
    const again = await open(url).catch((e) => e);
    expect(again).toMatchObject({ code: 'CENTER_LOCKED' }); // the lock came back with the new connection
  });

  it('with the database down, appends reject 503 JOURNAL_UNAVAILABLE and nothing is lost; once it is back, appends resume on the same store', async () => {
    const own = await startPostgres();
    onCleanup(() => own.stop());
    const url = await own.newDatabase();
    const { store, commits } = await open(url);
    await store.append([note(1), note(2)]);
    await own.kill9();
    await expect(store.append([note(3)])).rejects.toMatchObject({ code: 'JOURNAL_UNAVAILABLE', status: 503 });
    await expect(store.append([note(4)])).rejects.toMatchObject({ code: 'JOURNAL_UNAVAILABLE', status: 503 });
    expect(store.lastSeq).toBe(2);
    await own.restart();
    const [next] = await store.append([note(5)]);
    expect(next!.envelope.seq).toBe(3); // the refused ones took no seq
    expect(commits.flat().map((c) => c.envelope.seq)).toEqual([1, 2, 3]);
    expect((await sql<{ seq: string }>(url, 'SELECT seq FROM envelopes ORDER BY seq')).map((r) => Number(r.seq))).toEqual([1, 2, 3]);
  });

  /** Resolves once `cond` holds, checked on each commit the store hands over (bounded: 5 s). */
  const whenCommits = (commits: Committed[][], cond: (seqs: number[]) => boolean) =>
    new Promise<number[]>((resolve, reject) => {
      const end = Date.now() + 5000;
      const check = () => {
        const seqs = commits.flat().map((c) => c.envelope.seq);
        if (cond(seqs)) return resolve(seqs);
        if (Date.now() > end) return reject(new Error(`timed out; seen ${seqs.join(',')}`));
        setImmediate(check);
      };
      check();
    });

  it('a standby replays, follows the leader in seq order, refuses appends, and takes over (fencing the old leader) when the leader is gone', async () => {
    const url = await server.newDatabase();
    const leader = await open(url);
    await leader.store.append([note(1), note(2)]);
    const commits: Committed[][] = [];
    const standby = createPostgresStore({ url, log: quietLogger, onCommit: (b) => commits.push(b), standby: true, followPollMs: 50 });
    onCleanup(() => standby.close());
    const replayed: number[] = [];
    await standby.replay((e) => replayed.push(e.envelope.seq));
    expect([replayed, standby.role]).toEqual([[1, 2], 'standby']);
    standby.start!();
    await expect(standby.append([note(9)])).rejects.toMatchObject({ code: 'JOURNAL_UNAVAILABLE', status: 503 });

    const t0 = performance.now();
    await leader.store.append([note(3)]);
    await whenCommits(commits, (s) => s.includes(3));
    const followMs = performance.now() - t0;
    await Promise.all([leader.store.append([note(4), hb(5)]), leader.store.append([scan(6)])]);
    expect(await whenCommits(commits, (s) => s.length >= 4)).toEqual([3, 4, 5, 6]);
    const stored = await sql<{ line: Buffer }>(url, 'SELECT line FROM envelopes WHERE seq > 2 ORDER BY seq');
    expect(commits.flat().map((c) => c.line.toString())).toEqual(stored.map((r) => r.line.toString())); // the same bytes

    // The leader's connection dies (its machine is gone): the lock goes with it and the standby takes over.
    const t1 = performance.now();
    // Only the leader's writer connection holds the advisory lock.
    expect(await sql(url, "SELECT pg_terminate_backend(pid) AS killed FROM pg_locks WHERE locktype = 'advisory' AND granted")).toEqual([{ killed: true }]);
    await new Promise<void>((resolve, reject) => {
      const end = Date.now() + 5000;
      const check = () => (standby.role === 'leader' ? resolve() : Date.now() > end ? reject(new Error('no takeover')) : setTimeout(check, 10));
      check();
    });
    const takeoverMs = performance.now() - t1;
    const [seven] = await standby.append([note(7)]);
    expect(seven!.envelope.seq).toBe(7);
    // The old leader can never write again: its reconnect finds the lock taken.
    await expect(leader.store.append([note(8)])).rejects.toMatchObject({ code: 'JOURNAL_UNAVAILABLE' });
    expect((await sql<{ seq: string }>(url, 'SELECT seq FROM envelopes ORDER BY seq')).map((r) => Number(r.seq))).toEqual([1, 2, 3, 4, 5, 6, 7]);
    console.log(`standby: followed a commit in ${followMs.toFixed(0)} ms, took over ${takeoverMs.toFixed(0)} ms after the leader's connection died (poll 50 ms)`);
  });
});

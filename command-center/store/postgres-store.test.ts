import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { cleanupAfterEach, quietLogger } from '../../test/helpers.js';
import { requirePostgres, sql, startPostgres, type TestPostgres } from '../../test/postgres.js';
import { hb, note, scan, storeContract } from '../../test/store-contract.js';
import { canonicalJson } from '../../protocol/canonical-json.js';
import { claimKey, type Committed } from './envelope-store.js';
import { createPostgresStore } from './postgres-store.js';
import { migrate, MIGRATIONS, SCHEMA_VERSION, WRITER_LOCK } from '../../lib/postgres-schema.js';

const onCleanup = cleanupAfterEach();

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

  it('two stores on one database both append: seqs are gapless in commit order, each applies the other\'s entries in seq order before its own', async () => {
    const url = await server.newDatabase();
    const a = await open(url);
    const b = await open(url);
    a.store.start!();
    b.store.start!();
    const rounds = await Promise.all(
      Array.from({ length: 20 }, (_, i) => (i % 2 ? a : b).store.append([note(i), hb(i)])),
    );
    await a.store.sync();
    await b.store.sync();
    const stored = (await sql<{ seq: string; line: Buffer }>(url, 'SELECT seq, line FROM envelopes ORDER BY seq'));
    expect(stored.map((r) => Number(r.seq))).toEqual(Array.from({ length: 40 }, (_, i) => i + 1));
    expect(rounds.flat().map((c) => c.envelope.seq).sort((x, y) => x - y)).toEqual(stored.map((r) => Number(r.seq)));
    // Both memories got every entry once, in seq order, with the stored bytes.
    for (const s of [a, b]) {
      expect(s.commits.flat().map((c) => c.envelope.seq)).toEqual(stored.map((r) => Number(r.seq)));
      expect(s.commits.flat().map((c) => c.line.toString())).toEqual(stored.map((r) => r.line.toString()));
      expect(s.store.lastSeq).toBe(40);
    }
  });

  it('claims and draft ids are enforced across stores: one append wins, the others are refused with the winner\'s seq; nonce claims expire', async () => {
    const url = await server.newDatabase();
    const [a, b, c] = await Promise.all([open(url), open(url), open(url)]);
    const claim = [{ key: claimKey('join', 'tok-1', 1) }];
    const raced = await Promise.allSettled([a, b, c].map((s, i) => s.store.append([note(i)], { claims: claim })));
    expect(raced.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    const winner = (raced.find((r) => r.status === 'fulfilled') as PromiseFulfilledResult<Committed[]>).value[0]!.envelope.seq;
    for (const r of raced.filter((x) => x.status === 'rejected')) expect((r as PromiseRejectedResult).reason).toMatchObject({ kind: 'claim', key: claim[0]!.key, seq: winner, code: 'ID_CONFLICT' });
    // The same (author, id) from two stores: one envelope; a different author may use the same id.
    const ids = await Promise.allSettled([a.store.append([scan(7)]), b.store.append([scan(7)]), c.store.append([{ ...scan(7), author: 'node:n2' }])]);
    expect(ids.map((r) => r.status).sort()).toEqual(['fulfilled', 'fulfilled', 'rejected']);
    const dup = (ids.find((r) => r.status === 'rejected') as PromiseRejectedResult).reason;
    expect(dup).toMatchObject({ kind: 'id', key: 'scan-7' });
    expect(await sql(url, "SELECT count(*)::int AS n FROM envelopes WHERE id = 'scan-7'")).toEqual([{ n: 2 }]);
    // A refused append took no seq and no claim; the others in its batch went through.
    expect((await sql<{ seq: string }>(url, 'SELECT seq FROM envelopes ORDER BY seq')).map((r) => Number(r.seq))).toEqual([1, 2, 3]);
    // Claims on their own (request nonces): taken once until they expire.
    const nonce = { key: claimKey('nonce', 'n1', 'abc'), expiresAtMs: Date.now() + 300 };
    await a.store.claim([nonce]);
    await expect(b.store.claim([nonce])).rejects.toMatchObject({ kind: 'claim', code: 'ID_CONFLICT' });
    await new Promise((r) => setTimeout(r, 400));
    await b.store.claim([{ ...nonce, expiresAtMs: Date.now() + 60_000 }]);
    await expect(c.store.claim([nonce])).rejects.toMatchObject({ kind: 'claim' });
  });

  it('every open store holds the writer lock shared, so `store copy` (which takes it exclusively) refuses while any replica runs', async () => {
    const url = await server.newDatabase();
    const tryExclusive = async () => {
      const c = new pg.Client({ connectionString: url });
      await c.connect();
      const r = await c.query<{ locked: boolean }>('SELECT pg_try_advisory_lock($1, $2) AS locked', [...WRITER_LOCK]);
      return { locked: r.rows[0]!.locked, end: () => c.end() };
    };
    const a = await open(url);
    await open(url); // a second replica shares it
    const during = await tryExclusive();
    expect(during.locked).toBe(false);
    await during.end();
    await a.store.close();
    const copy = await tryExclusive().catch((e) => e);
    expect(copy.locked).toBe(false); // the second store still holds it
    await copy.end();
  });

  it('a store refuses to start while a store copy holds the writer lock (CENTER_LOCKED)', async () => {
    const url = await server.newDatabase();
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    onCleanup(() => c.end());
    await c.query('SELECT pg_advisory_lock($1, $2)', [...WRITER_LOCK]);
    const store = createPostgresStore({ url, log: quietLogger, onCommit: () => {} });
    onCleanup(() => store.close());
    await expect(store.replay(() => {})).rejects.toMatchObject({ code: 'CENTER_LOCKED' });
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

  it('a replica follows the others\' commits without appending (NOTIFY wake-up, seq order, the stored bytes), and keeps following after its connection is killed', async () => {
    const url = await server.newDatabase();
    const writer = await open(url);
    await writer.store.append([note(1), note(2)]);
    const commits: Committed[][] = [];
    const follower = createPostgresStore({ url, log: quietLogger, onCommit: (b) => commits.push(b), followPollMs: 50 });
    onCleanup(() => follower.close());
    const replayed: number[] = [];
    await follower.replay((e) => replayed.push(e.envelope.seq));
    expect(replayed).toEqual([1, 2]);
    follower.start!();

    const t0 = performance.now();
    await writer.store.append([note(3)]);
    await whenCommits(commits, (s) => s.includes(3));
    const followMs = performance.now() - t0;
    await Promise.all([writer.store.append([note(4), hb(5)]), writer.store.append([scan(6)])]);
    expect(await whenCommits(commits, (s) => s.length >= 4)).toEqual([3, 4, 5, 6]);
    const stored = await sql<{ line: Buffer }>(url, 'SELECT line FROM envelopes WHERE seq > 2 ORDER BY seq');
    expect(commits.flat().map((c) => c.line.toString())).toEqual(stored.map((r) => r.line.toString())); // the same bytes

    // Every connection of every store is killed: the poll reconnects and nothing is missed or applied twice.
    await sql(url, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'vaultmesh-cc' AND pid <> pg_backend_pid()");
    await writer.store.append([note(7)]).catch(() => writer.store.append([note(7)]));
    expect(await whenCommits(commits, (s) => s.includes(7))).toEqual([3, 4, 5, 6, 7]);
    // And the follower writes too.
    const [eight] = await follower.append([note(8)]);
    expect(eight!.envelope.seq).toBe(8);
    console.log(`replica: followed a commit in ${followMs.toFixed(0)} ms`);
  });
});

/**
 * The PostgreSQL store (`--store postgres`): the `EnvelopeStore` over one table of envelopes keyed by the global
 * seq, each row holding the exact canonical line that the JSONL store would write, so ledger leaves, exports and the
 * `logs` tools see the same bytes. Any number of centers (replicas) share one database, and every one of them writes.
 *
 * Appends: one transaction per group-commit batch. It locks the counter row (`log_head`) first, so transactions
 * from every replica take their seq ranges one after another and commit in seq order, with no gaps (a rolled-back
 * batch returns its range). Under that lock it checks the batch's claims and draft ids against what is stored
 * (every earlier append is committed and visible by then), drops the appends whose claim is taken (ClaimTaken),
 * and inserts the rest with their claims. An append resolves only after COMMIT.
 *
 * Applying: each replica's memory is the log applied in seq order, its own entries and the others'. After a COMMIT
 * the replica first applies what other replicas committed before its range, then its own batch; a follower applies
 * the rest as it lands (LISTEN/NOTIFY wakes it, it reads `seq > last`, a periodic poll covers a lost notification).
 * One mutex orders the two, so each entry is applied once, in seq order. When the database goes away appends reject
 * with 503 JOURNAL_UNAVAILABLE, state stays in memory, and the next append reconnects; a COMMIT whose answer was
 * lost is found and applied by the same catch-up, so memory stays equal to a replay.
 */
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { journalForKind, type EnvelopeDraft, type JournalName } from '../../protocol/envelope.js';
import { isVaultMeshError, VaultMeshError } from '../../protocol/errors.js';
import type { Logger } from '../../lib/logger.js';
import { parseJournalLine } from '../../lib/journal/index.js';
import { ClaimTaken, committedEntry, type Claim, type Committed, type EnvelopeStore, type ReplayReport, type TailFrom, type TailOptions, type Visit } from './envelope-store.js';
import { createDrainLoop } from './drain-loop.js';
import { createMutex } from './mutex.js';
import { migrate, WRITER_LOCK } from '../../lib/postgres-schema.js';
import { realTimers, type Timers } from '../../lib/timers.js';
import { parseSummary, type HeartbeatSummary } from './heartbeat-segments.js';

const CHANNEL = 'vaultmesh_log';

export interface PostgresStoreOptions {
  url: string;
  log: Logger;
  /** The commit fan-out: each durable batch, in seq order (other replicas' entries too), before any append of it resolves. */
  onCommit: (batch: Committed[]) => void;
  onFlush?: (stats: { entries: number; writeMs: number; fsyncMs: number }) => void;
  now?: () => Date;
  newId?: () => string;
  /** How long a connection attempt may take before the append (or read) fails with 503. */
  connectTimeoutMs?: number;
  /** Client-side bound on one statement, so a silent network does not hold appends forever. */
  queryTimeoutMs?: number;
  /** Rows per read round trip. */
  pageSize?: number;
  /** How often the follower reads the log without a notification (bounds how late a lost notification makes it). */
  followPollMs?: number;
  /** How often expired claims (request nonces) are deleted. */
  claimPruneMs?: number;
  timers?: Timers;
}

export type PostgresStore = EnvelopeStore & Required<Pick<EnvelopeStore, 'claim' | 'sync'>>;

interface Pending {
  items: Array<{ draft: EnvelopeDraft; id: string }>;
  claims: readonly Claim[];
  resolve: (committed: Committed[]) => void;
  reject: (err: unknown) => void;
}

interface Row {
  seq: string;
  line: Buffer;
}

const unavailable = (cause: unknown, what: string) =>
  isVaultMeshError(cause) ? cause : new VaultMeshError('JOURNAL_UNAVAILABLE', `${what}: database unavailable: ${(cause as Error)?.message ?? String(cause)}`, { status: 503, cause });

/** Reads a stored row back as a committed envelope; a string names why it is not one. */
function toCommitted(row: Row): Committed | string {
  const env = parseJournalLine(row.line);
  if (typeof env === 'string') return env;
  return { envelope: env, journal: journalForKind(env.kind), line: row.line };
}

/** Key of an (author, id) pair in the lookups below (JSON: no separator can be forged, no NUL reaches the database). */
const idKey = (author: string, id: string) => JSON.stringify([author, id]);

export function createPostgresStore(opts: PostgresStoreOptions): PostgresStore {
  const { log } = opts;
  const now = opts.now ?? (() => new Date());
  const newId = opts.newId ?? randomUUID;
  const pageSize = opts.pageSize ?? 1000;
  const clientConfig: pg.ClientConfig = {
    connectionString: opts.url,
    connectionTimeoutMillis: opts.connectTimeoutMs ?? 5000,
    query_timeout: opts.queryTimeoutMs ?? 15_000,
    application_name: 'vaultmesh-cc',
  };
  const pool = new pg.Pool({ ...clientConfig, max: 4 });
  // An idle pooled connection that dies (database restart) is dropped by the pool; without a listener it would crash.
  pool.on('error', (err) => log.warn(`postgres store: idle connection lost: ${err.message}`));

  let writer: pg.Client | undefined;
  /** The last seq applied to this replica's memory (every entry up to it went through onCommit or replay). */
  let lastSeq = 0;
  let replayed = false;
  let closed = false;
  let queue: Pending[] = [];
  const timers = opts.timers ?? realTimers;
  const followPollMs = opts.followPollMs ?? 1000;
  const claimPruneMs = opts.claimPruneMs ?? 60_000;
  let listener: pg.Client | undefined;
  let pollTimer: unknown;
  let pruneTimer: unknown;
  let started = false;
  // Applying is one at a time: the writer's own batch and the follower's reads never interleave, so entries reach
  // onCommit once each, in seq order.
  const applying = createMutex();
  let heartbeatSummary: HeartbeatSummary | undefined;

  const dropWriter = (c: pg.Client | undefined) => {
    if (!c) return;
    if (writer === c) writer = undefined;
    c.end().catch(() => undefined);
  };

  async function ensureWriter(): Promise<pg.Client> {
    if (writer) return writer;
    const c = new pg.Client(clientConfig);
    c.on('error', (err) => {
      if (writer === c) log.warn(`postgres store: writer connection lost: ${err.message}`);
      dropWriter(c);
    });
    try {
      await c.connect();
    } catch (err) {
      dropWriter(c);
      throw err;
    }
    writer = c;
    return c;
  }

  function fanOut(batch: Committed[]): void {
    try {
      opts.onCommit(batch);
    } catch (err) {
      // The data is durable; a failing observer must not un-acknowledge it. Surface loudly instead.
      log.error(`postgres store: onCommit hook failed: ${(err as Error)?.stack ?? String(err)}`);
    }
  }

  /**
   * Applies stored entries after `lastSeq` (up to `upTo` when given) in seq order. Caller holds `applying`. Stops at
   * a hole (which a reader could only see if commits became visible out of order; the next call picks it up).
   */
  async function applyStored(q: Pick<pg.ClientBase, 'query'>, upTo = Number.MAX_SAFE_INTEGER): Promise<void> {
    for (;;) {
      const r = await q.query<Row>('SELECT seq, line FROM envelopes WHERE seq > $1 AND seq <= $2 ORDER BY seq LIMIT $3', [lastSeq, upTo, pageSize]);
      const batch: Committed[] = [];
      for (const row of r.rows) {
        if (Number(row.seq) !== lastSeq + batch.length + 1) break;
        const e = toCommitted(row);
        if (typeof e === 'string') throw new VaultMeshError('JOURNAL_CORRUPT', `stored envelope at seq ${row.seq}: ${e}`, { status: 500 });
        batch.push(e);
      }
      if (batch.length === 0) return;
      lastSeq = batch[batch.length - 1]!.envelope.seq;
      fanOut(batch);
      if (batch.length < r.rows.length || r.rows.length < pageSize) return;
    }
  }

  // sync(): calls that arrive while one is waiting for the mutex share it (it starts after them, so it sees their log).
  // The writer's own catch-up (drain) needs no start(): it runs after the fan-out is sealed.
  let queuedSync: { p: Promise<void> } | undefined;
  function sync(): Promise<void> {
    // Not before start(): until the center is composed, the consumers are not all in place (replay covers the log
    // up to its head; start() catches up from there).
    if (closed || !started) return Promise.resolve();
    if (queuedSync) return queuedSync.p;
    const slot = {} as { p: Promise<void> };
    slot.p = applying.run(async () => {
      if (queuedSync === slot) queuedSync = undefined;
      try {
        await applyStored(pool);
      } catch (err) {
        throw unavailable(err, 'follow');
      }
    });
    queuedSync = slot;
    return slot.p;
  }

  /**
   * One transaction: lock the head, refuse what is taken, insert the rest. Returns the kept appends' entries (in
   * batch order) and, per pending, its entries or the reason it was refused.
   */
  async function writeBatch(batch: Pending[]): Promise<{ first: number; last: number; outcome: Array<Committed[] | ClaimTaken> }> {
    const c = await ensureWriter();
    const t0 = performance.now();
    try {
      // One round trip: the transaction and the head's row lock (the wait for other replicas' batches is here).
      const opened = (await c.query('BEGIN; SELECT last_seq FROM log_head FOR UPDATE')) as unknown as pg.QueryResult[];
      const head = Number((opened[1]!.rows[0] as { last_seq: string }).last_seq);
      // Under the lock every earlier append is committed and visible to this (new) statement's snapshot.
      const authors: string[] = [];
      const ids: string[] = [];
      for (const p of batch) for (const { draft, id } of p.items) if (draft.id !== undefined) (authors.push(draft.author), ids.push(id));
      const claimKeys = batch.flatMap((p) => p.claims.map((cl) => cl.key));
      const taken = new Map<string, { kind: 'id' | 'claim'; seq: number }>();
      if (ids.length || claimKeys.length) {
        const r = await c.query<{ k: string; key: string; seq: string }>(
          `SELECT 'id' AS k, json_build_array(e.author, e.id)::text AS key, min(e.seq) AS seq
             FROM envelopes e JOIN unnest($1::text[], $2::text[]) AS d(author, id) ON e.author = d.author AND e.id = d.id
             GROUP BY e.author, e.id
           UNION ALL
           SELECT 'claim', key, seq FROM claims WHERE key = ANY($3::text[]) AND (expires_at IS NULL OR expires_at > now())`,
          [authors, ids, claimKeys],
        );
        for (const row of r.rows) taken.set(row.k === 'id' ? idKey(...(JSON.parse(row.key) as [string, string])) : `c${row.key}`, { kind: row.k as 'id' | 'claim', seq: Number(row.seq) });
      }
      const ts = now().toISOString();
      let seq = head;
      const kept: Committed[] = [];
      const keptClaims: Array<{ key: string; seq: number; expires: string | null }> = [];
      const outcome: Array<Committed[] | ClaimTaken> = [];
      for (const p of batch) {
        let refused: ClaimTaken | undefined;
        for (const { draft, id } of p.items) {
          const t = draft.id !== undefined ? taken.get(idKey(draft.author, id)) : undefined;
          if (t) refused ??= new ClaimTaken('id', id, t.seq);
        }
        for (const cl of p.claims) {
          const t = taken.get(`c${cl.key}`);
          if (t) refused ??= new ClaimTaken('claim', cl.key, t.seq);
        }
        if (refused) {
          outcome.push(refused);
          continue;
        }
        const entries = p.items.map(({ draft, id }) => committedEntry(draft, id, ++seq, ts));
        // Later appends in this batch see what this one takes.
        for (const e of entries) if (p.items.some((i) => i.draft.id !== undefined && i.id === e.envelope.id)) taken.set(idKey(e.envelope.author, e.envelope.id), { kind: 'id', seq: e.envelope.seq });
        const claimSeq = entries[0]?.envelope.seq ?? 0;
        for (const cl of p.claims) {
          taken.set(`c${cl.key}`, { kind: 'claim', seq: claimSeq });
          keptClaims.push({ key: cl.key, seq: claimSeq, expires: cl.expiresAtMs === undefined ? null : new Date(cl.expiresAtMs).toISOString() });
        }
        kept.push(...entries);
        outcome.push(entries);
      }
      if (kept.length === 0 && keptClaims.length === 0) {
        await c.query('ROLLBACK');
        return { first: head + 1, last: head, outcome };
      }
      // One statement: the entries, their claims (an expired one is taken over), the new head and the wake-up for
      // the other replicas (a NOTIFY is delivered at COMMIT; a missed one only delays them until their poll).
      await c.query(
        `WITH e AS (
           INSERT INTO envelopes (seq, journal, kind, id, author, node_id, ts, line)
           SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::timestamptz[], $8::bytea[])
         ), cl AS (
           INSERT INTO claims (key, seq, expires_at) SELECT * FROM unnest($9::text[], $10::bigint[], $11::timestamptz[])
           ON CONFLICT (key) DO UPDATE SET seq = EXCLUDED.seq, expires_at = EXCLUDED.expires_at
         )
         UPDATE log_head SET last_seq = $12::bigint RETURNING pg_notify('${CHANNEL}', $12::bigint::text)`,
        [
          kept.map((i) => i.envelope.seq),
          kept.map((i) => i.journal),
          kept.map((i) => i.envelope.kind),
          kept.map((i) => i.envelope.id),
          kept.map((i) => i.envelope.author),
          kept.map((i) => i.envelope.node_id ?? null),
          kept.map((i) => i.envelope.ts),
          kept.map((i) => i.line),
          keptClaims.map((k) => k.key),
          keptClaims.map((k) => k.seq),
          keptClaims.map((k) => k.expires),
          seq,
        ],
      );
      const t1 = performance.now();
      await c.query('COMMIT');
      opts.onFlush?.({ entries: kept.length, writeMs: t1 - t0, fsyncMs: performance.now() - t1 });
      return { first: head + 1, last: seq, outcome };
    } catch (err) {
      // Whatever failed, the outcome of this transaction may be unknown (a lost COMMIT answer): drop the connection,
      // so the next batch starts on a fresh one; the catch-up applies anything that did land.
      dropWriter(c);
      throw err;
    }
  }

  async function drain(): Promise<void> {
    while (queue.length) {
      const batch = queue.splice(0, queue.length);
      let written: Awaited<ReturnType<typeof writeBatch>>;
      try {
        written = await writeBatch(batch);
      } catch (cause) {
        const err = unavailable(cause, 'append failed');
        for (const p of batch) p.reject(err);
        continue;
      }
      // Committed. Memory first: other replicas' entries before ours, then ours (unless the follower already applied
      // them from the table), so a client reads its own write here as soon as it is answered.
      try {
        await applying.run(async () => {
          if (lastSeq < written.first - 1) await applyStored(writer ?? pool, written.first - 1);
          if (lastSeq < written.first - 1) throw new Error(`the log before seq ${written.first} could not be read`);
          if (lastSeq < written.last) {
            const own = written.outcome.flatMap((o) => (o instanceof ClaimTaken ? [] : o));
            lastSeq = written.last;
            if (own.length) fanOut(own);
          }
        });
      } catch (cause) {
        // Durable but not in memory yet: answering now would break read-your-writes, so wait until the follower
        // (retrying on its poll) has applied it, in order.
        log.warn(`postgres store: committed seq ${written.first}..${written.last} but could not apply the entries before it yet: ${(cause as Error).message}`);
        await waitApplied(written.last);
      }
      for (const [i, p] of batch.entries()) {
        const o = written.outcome[i]!;
        if (o instanceof ClaimTaken) p.reject(o);
        else p.resolve(o);
      }
    }
  }

  /**
   * Waits (bounded) until `seq` is applied, the follower retrying on each poll. Past the bound the append is
   * answered anyway: it is durable, and memory gets it as soon as the database answers reads again.
   */
  async function waitApplied(seq: number): Promise<void> {
    const end = performance.now() + 5000;
    while (lastSeq < seq && !closed && performance.now() < end) {
      await new Promise((r) => timers.setTimeout(() => r(undefined), Math.min(followPollMs, 200)));
      await sync().catch(() => undefined);
    }
  }

  const loop = createDrainLoop(drain, () => queue.length > 0);

  /** Pages through stored rows in seq order (or reverse) while `visit` wants more. */
  async function page(where: string, params: unknown[], order: 'ASC' | 'DESC', visit: (row: Row) => boolean): Promise<void> {
    let cursor = order === 'ASC' ? 0 : Number.MAX_SAFE_INTEGER;
    for (;;) {
      const n = params.length;
      let r: pg.QueryResult<Row>;
      try {
        r = await pool.query<Row>(
          `SELECT seq, line FROM envelopes WHERE ${where} AND seq ${order === 'ASC' ? '>' : '<'} $${n + 1} ORDER BY seq ${order} LIMIT $${n + 2}`,
          [...params, cursor, pageSize],
        );
      } catch (err) {
        throw unavailable(err, 'read failed');
      }
      for (const row of r.rows) if (visit(row) === false) return;
      if (r.rows.length < pageSize) return;
      cursor = Number(r.rows[r.rows.length - 1]!.seq);
    }
  }

  async function tail(from: TailFrom, visit: Visit, tailOpts: TailOptions = {}): Promise<void> {
    let after: number;
    if ('afterSeq' in from) after = from.afterSeq;
    else {
      let r: pg.QueryResult<{ s: string | null }>;
      try {
        r = await pool.query<{ s: string | null }>('SELECT min(seq) AS s FROM envelopes WHERE ts >= $1 AND seq <= $2', [new Date(from.tsMs).toISOString(), lastSeq]);
      } catch (err) {
        throw unavailable(err, 'read failed');
      }
      if (r.rows[0]?.s === null || r.rows[0]?.s === undefined) return;
      after = Number(r.rows[0].s) - 1;
    }
    const journals = tailOpts.journals;
    const params: unknown[] = [after, lastSeq];
    let where = 'seq > $1 AND seq <= $2';
    if (journals) {
      params.push(journals);
      where += ' AND journal = ANY($3::text[])';
    }
    let corrupt: string | undefined;
    await page(where, params, 'ASC', (row) => {
      const e = toCommitted(row);
      if (typeof e === 'string') {
        if (tailOpts.onCorrupt === 'skip') return true;
        corrupt = `seq ${row.seq}: ${e}`;
        return false;
      }
      return visit(e) !== false;
    });
    if (corrupt) throw new VaultMeshError('JOURNAL_CORRUPT', `corrupt stored envelope at ${corrupt}`, { status: 500 });
  }

  /** The follower's connection: LISTEN for commits, and the shared writer lock that tells `store copy` a center runs. */
  async function ensureListener(): Promise<void> {
    if (listener) return;
    const c = new pg.Client(clientConfig);
    c.on('error', (err) => {
      log.warn(`postgres store: follower connection lost: ${err.message}`);
      if (listener === c) listener = undefined;
      c.end().catch(() => undefined);
    });
    c.on('notification', () => {
      sync().catch((err) => log.warn(`postgres store: could not follow the log: ${(err as Error).message}`));
    });
    try {
      await c.connect();
      const r = await c.query<{ locked: boolean }>('SELECT pg_try_advisory_lock_shared($1, $2) AS locked', [...WRITER_LOCK]);
      if (!r.rows[0]!.locked) throw new VaultMeshError('CENTER_LOCKED', 'a store copy into this database is running (it holds the writer lock); start the center once it is done');
      await c.query(`LISTEN ${CHANNEL}`);
    } catch (err) {
      c.end().catch(() => undefined);
      throw err;
    }
    listener = c;
  }

  function schedulePoll(): void {
    if (closed) return;
    pollTimer = timers.setTimeout(() => {
      // The poll also brings back a lost follower connection.
      ensureListener()
        .then(() => sync())
        .catch((err) => log.warn(`postgres store: could not follow the log: ${(err as Error).message}`))
        .finally(schedulePoll);
    }, followPollMs);
  }

  /** Deletes expired claims (request nonces past their window); any replica may, concurrent deletes are harmless. */
  function schedulePrune(): void {
    if (closed) return;
    pruneTimer = timers.setTimeout(() => {
      pool
        .query('DELETE FROM claims WHERE expires_at IS NOT NULL AND expires_at <= now()')
        .catch((err) => log.warn(`postgres store: could not prune expired claims: ${(err as Error).message}`))
        .finally(schedulePrune);
    }, claimPruneMs);
  }

    /** The summary of heartbeats deleted by retention (postgres-retention.ts); read before the rows it covers. */
  async function readHeartbeatSummary(): Promise<void> {
    const summary = await pool.query<{ summary: string }>('SELECT summary FROM heartbeat_summary');
    heartbeatSummary = summary.rows[0] ? parseSummary(summary.rows[0].summary) : undefined;
  }

  async function replayAll(visit: (entry: Committed) => void, afterSeq: number): Promise<ReplayReport> {
    const started = performance.now();
    const c = await pool.connect().catch((err) => {
      throw unavailable(err, 'start-up');
    });
    try {
      await migrate(c);
    } finally {
      c.release();
    }
    // Listening before reading the head: a commit after the read wakes the follower (which starts in start()).
    await ensureListener();
    await readHeartbeatSummary();
    const head = await pool.query<{ last_seq: string }>('SELECT last_seq FROM log_head');
    const upTo = Number(head.rows[0]!.last_seq);
    let envelopes = 0;
    let previous = afterSeq;
    let corrupt: string | undefined;
    lastSeq = upTo; // bounds the reads below
    if (afterSeq > upTo) throw new VaultMeshError('JOURNAL_CORRUPT', `replay after seq ${afterSeq} asked of a log that ends at ${upTo}`, { status: 500 });
    // Gaps are allowed (a log copied from JSONL keeps the holes of its failed batches); the line and its row agree.
    await page('seq > $1 AND seq <= $2', [afterSeq, upTo], 'ASC', (row) => {
      const e = toCommitted(row);
      if (typeof e === 'string' || e.envelope.seq !== Number(row.seq)) {
        corrupt = `seq ${row.seq}: ${typeof e === 'string' ? e : `its line says seq ${e.envelope.seq}`}`;
        return false;
      }
      previous = e.envelope.seq;
      envelopes++;
      visit(e);
      return true;
    });
    if (!corrupt && previous !== upTo) corrupt = `log_head says seq ${upTo} but the log ends at ${previous}`;
    if (corrupt) {
      throw new VaultMeshError('JOURNAL_CORRUPT', `the envelope log in the database is not whole: ${corrupt}`, { status: 500 });
    }
    return { lastSeq, envelopes, tornTails: [], quarantined: [], durationMs: performance.now() - started, afterSeq };
  }

  return {
    get heartbeatSummary() {
      return heartbeatSummary;
    },
    get lastSeq() {
      return lastSeq;
    },
    enforcesClaims: true,

    start() {
      if (started) return;
      started = true;
      sync().catch((err) => log.warn(`postgres store: could not follow the log: ${(err as Error).message}`));
      schedulePoll();
      schedulePrune();
    },

    sync,

    async claim(claims) {
      if (closed) throw new VaultMeshError('SHUTTING_DOWN', 'the command center is shutting down', { status: 503 });
      for (const cl of claims) {
        let r: pg.QueryResult;
        try {
          // Taken unless it is absent or expired; a concurrent append taking the same key makes this wait for it.
          r = await pool.query(
            `INSERT INTO claims (key, seq, expires_at) VALUES ($1, 0, $2)
             ON CONFLICT (key) DO UPDATE SET seq = 0, expires_at = EXCLUDED.expires_at
               WHERE claims.expires_at IS NOT NULL AND claims.expires_at <= now()
             RETURNING key`,
            [cl.key, cl.expiresAtMs === undefined ? null : new Date(cl.expiresAtMs).toISOString()],
          );
        } catch (err) {
          throw unavailable(err, 'claim failed');
        }
        if (r.rowCount !== 1) throw new ClaimTaken('claim', cl.key, 0);
      }
    },

    async entryAt(seq) {
      let r: pg.QueryResult<Row>;
      try {
        // A state snapshot is checked against the summary too (summarised after it was taken: not usable).
        await readHeartbeatSummary();
        r = await pool.query<Row>('SELECT seq, line FROM envelopes WHERE seq = $1', [seq]);
      } catch (err) {
        // Before the first migration there is no table, so no entry: the caller falls back to a full replay.
        if ((err as { code?: string }).code === '42P01') return undefined;
        throw unavailable(err, 'read failed');
      }
      const row = r.rows[0];
      if (!row) return undefined;
      const e = toCommitted(row);
      return typeof e === 'string' || e.envelope.seq !== seq ? undefined : e;
    },

    async replay(visit, replayOpts = {}): Promise<ReplayReport> {
      if (replayed) throw new Error('postgres store: replay runs once, at start');
      replayed = true;
      try {
        return await replayAll(visit, replayOpts.afterSeq ?? 0);
      } catch (err) {
        // A refused start must not leave connections open (they would keep the process alive).
        closed = true;
        dropWriter(writer);
        await listener?.end().catch(() => undefined);
        listener = undefined;
        await pool.end().catch(() => undefined);
        throw err;
      }
    },

    append(drafts, appendOpts) {
      if (closed) return Promise.reject(new VaultMeshError('SHUTTING_DOWN', 'the command center is shutting down', { status: 503 }));
      if (!replayed) return Promise.reject(new Error('postgres store: append before replay'));
      if (drafts.length === 0) return Promise.resolve([]);
      const items: Pending['items'] = [];
      for (const draft of drafts) {
        const id = draft.id ?? newId();
        // Refused before any seq is taken: an envelope with no canonical form (a lone surrogate) never reaches a batch.
        try {
          committedEntry(draft, id, 1, '');
        } catch (err) {
          return Promise.reject(err);
        }
        items.push({ draft, id });
      }
      return new Promise<Committed[]>((resolve, reject) => {
        queue.push({ items, claims: appendOpts?.claims ?? [], resolve, reject });
        loop.kick();
      });
    },

    tail,

    async readNewestFirst(journal: JournalName, visit: Visit) {
      await page('journal = $1 AND seq <= $2', [journal, lastSeq], 'DESC', (row) => {
        const e = toCommitted(row);
        return typeof e === 'string' || visit(e) !== false;
      });
    },

    async readLines(journal: JournalName, visit: (line: Buffer) => void) {
      await page('journal = $1 AND seq <= $2', [journal, lastSeq], 'ASC', (row) => {
        visit(row.line);
        return true;
      });
    },

    async flush() {
      await loop.idle();
    },

    async close() {
      if (closed) return;
      closed = true;
      if (pollTimer !== undefined) timers.clearTimeout(pollTimer);
      if (pruneTimer !== undefined) timers.clearTimeout(pruneTimer);
      await loop.idle();
      const l = listener;
      listener = undefined;
      await l?.end().catch(() => undefined);
      const w = writer;
      writer = undefined;
      await w?.end().catch(() => undefined);
      await pool.end().catch(() => undefined);
    },
  };
}

/** The last seq of the envelope log in the database (0 when it has none yet); start-up's missing-key check asks it. */
export async function storedLastSeq(url: string, connectTimeoutMs = 5000): Promise<number> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: connectTimeoutMs });
  try {
    await client.connect();
    const exists = await client.query<{ t: string | null }>(`SELECT to_regclass('log_head')::text AS t`);
    if (!exists.rows[0]?.t) return 0;
    const r = await client.query<{ last_seq: string }>('SELECT last_seq FROM log_head');
    return Number(r.rows[0]?.last_seq ?? 0);
  } catch (err) {
    throw unavailable(err, 'start-up');
  } finally {
    await client.end().catch(() => undefined);
  }
}

/**
 * The PostgreSQL store (`--store postgres`): the `EnvelopeStore` over one table of envelopes keyed by the global
 * seq, each row holding the exact canonical line that the JSONL store would write, so ledger leaves, exports and the
 * `logs` tools see the same bytes.
 *
 * Appends: one transaction per group-commit batch. The transaction takes the seq range by updating the counter row
 * (`log_head`) conditionally on the last seq this center knows; the row lock it holds until COMMIT makes seq order
 * commit order with no gaps (a rolled-back batch returns its range), and the condition fences off a writer whose
 * view is stale. An append resolves only after COMMIT.
 *
 * One writing center per database for now: the center holds a session advisory lock on its writer connection and
 * refuses to start while another holds it. When the database goes away the writer connection (and the lock) goes
 * with it: appends reject with 503 JOURNAL_UNAVAILABLE, state stays in memory, and the next append reconnects,
 * takes the lock again and first applies what is in the log past its last seq (a COMMIT whose answer was lost may
 * have landed), so memory stays equal to a replay.
 */
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { journalForKind, type EnvelopeDraft, type JournalName } from '../../protocol/envelope.js';
import { isVaultMeshError, VaultMeshError } from '../../protocol/errors.js';
import type { Logger } from '../../lib/logger.js';
import { parseJournalLine } from '../../lib/journal/index.js';
import { committedEntry, type Committed, type EnvelopeStore, type ReplayReport, type TailFrom, type TailOptions, type Visit } from './envelope-store.js';
import { createDrainLoop } from './drain-loop.js';
import { migrate, WRITER_LOCK } from '../../lib/postgres-schema.js';
import { realTimers, type Timers } from '../../lib/timers.js';

const CHANNEL = 'vaultmesh_log';

export interface PostgresStoreOptions {
  url: string;
  log: Logger;
  /** The commit fan-out: each durable batch, in seq order, before any append of it resolves. */
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
  /**
   * Another center holds the writer lock: follow its log instead of refusing to start (a hot standby). The store
   * replays, then applies the leader's entries as they commit (LISTEN/NOTIFY wakes it, it reads `seq > last`), refuses
   * appends with 503, and takes the lock, and the writing, when the leader's connection is gone.
   */
  standby?: boolean;
  /** How often a standby checks the lock and the log without a notification (bounds the takeover time). */
  followPollMs?: number;
  timers?: Timers;
}

export type StoreRole = 'leader' | 'standby';

export interface PostgresStore extends EnvelopeStore {
  readonly role: StoreRole;
}

interface Pending {
  items: Array<{ draft: EnvelopeDraft; id: string }>;
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
  let lastSeq = 0;
  let replayed = false;
  let closed = false;
  let queue: Pending[] = [];
  let role: StoreRole = 'leader';
  const timers = opts.timers ?? realTimers;
  const followPollMs = opts.followPollMs ?? 1000;
  let listener: pg.Client | undefined;
  let pollTimer: unknown;
  let following = false;
  let followAgain = false;
  let started = false;

  const dropWriter = (c: pg.Client | undefined) => {
    if (!c) return;
    if (writer === c) writer = undefined;
    c.end().catch(() => undefined);
  };

  /** The writer connection with the advisory lock held; a new one first applies what is past our last seq. */
  async function ensureWriter(onStart: boolean): Promise<pg.Client> {
    if (writer) return writer;
    const c = new pg.Client(clientConfig);
    c.on('error', (err) => {
      if (writer === c) log.warn(`postgres store: writer connection lost: ${err.message}`);
      dropWriter(c);
    });
    try {
      await c.connect();
      const r = await c.query<{ locked: boolean }>('SELECT pg_try_advisory_lock($1, $2) AS locked', [...WRITER_LOCK]);
      if (!r.rows[0]!.locked) {
        throw new VaultMeshError(
          onStart ? 'CENTER_LOCKED' : 'JOURNAL_UNAVAILABLE',
          'another center writes to this database (it holds the writer lock); stop it first, or start this one with --standby to follow it',
          onStart ? {} : { status: 503 },
        );
      }
    } catch (err) {
      dropWriter(c);
      throw err;
    }
    writer = c;
    if (!onStart) await catchUp(c);
    return c;
  }

  /** Applies entries committed past `lastSeq` (a batch whose COMMIT answer was lost) through the commit fan-out. */
  async function catchUp(c: pg.Client): Promise<void> {
    for (;;) {
      const r = await c.query<Row>('SELECT seq, line FROM envelopes WHERE seq > $1 ORDER BY seq LIMIT $2', [lastSeq, pageSize]);
      if (r.rows.length === 0) return;
      const batch: Committed[] = [];
      for (const row of r.rows) {
        const e = toCommitted(row);
        if (typeof e === 'string') throw new VaultMeshError('JOURNAL_CORRUPT', `stored envelope after seq ${lastSeq}: ${e}`, { status: 500 });
        batch.push(e);
      }
      log.warn(`postgres store: applying ${batch.length} stored envelope(s) after seq ${lastSeq} (committed while the answer was lost)`);
      lastSeq = batch[batch.length - 1]!.envelope.seq;
      fanOut(batch);
    }
  }

  function fanOut(batch: Committed[]): void {
    try {
      opts.onCommit(batch);
    } catch (err) {
      // The data is durable; a failing observer must not un-acknowledge it. Surface loudly instead.
      log.error(`postgres store: onCommit hook failed: ${(err as Error)?.stack ?? String(err)}`);
    }
  }

  async function writeBatch(batch: Pending[]): Promise<Committed[]> {
    const c = await ensureWriter(false);
    const drafts = batch.flatMap((p) => p.items);
    const t0 = performance.now();
    try {
      await c.query('BEGIN');
      // The counter row is locked until COMMIT: the next batch (from any connection) gets the range after ours.
      const head = await c.query<{ last_seq: string }>('UPDATE log_head SET last_seq = last_seq + $1 WHERE last_seq = $2 RETURNING last_seq', [drafts.length, lastSeq]);
      if (head.rowCount !== 1) throw new VaultMeshError('JOURNAL_UNAVAILABLE', `the log moved past seq ${lastSeq} without this center`, { status: 503 });
      const ts = now().toISOString();
      let seq = lastSeq;
      const items: Committed[] = drafts.map(({ draft, id }) => committedEntry(draft, id, ++seq, ts));
      await c.query(
        `INSERT INTO envelopes (seq, journal, kind, id, author, node_id, ts, line)
         SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::timestamptz[], $8::bytea[])`,
        [
          items.map((i) => i.envelope.seq),
          items.map((i) => i.journal),
          items.map((i) => i.envelope.kind),
          items.map((i) => i.envelope.id),
          items.map((i) => i.envelope.author),
          items.map((i) => i.envelope.node_id ?? null),
          items.map((i) => i.envelope.ts),
          items.map((i) => i.line),
        ],
      );
      // Delivered at COMMIT: wakes standbys, which then read by seq (a missed notification only delays them).
      await c.query('SELECT pg_notify($1, $2)', [CHANNEL, String(seq)]);
      const t1 = performance.now();
      await c.query('COMMIT');
      lastSeq = seq;
      opts.onFlush?.({ entries: items.length, writeMs: t1 - t0, fsyncMs: performance.now() - t1 });
      return items;
    } catch (err) {
      // Whatever failed, the outcome of this transaction may be unknown (a lost COMMIT answer): drop the connection,
      // so the next batch starts on a fresh one and first applies anything that did land.
      dropWriter(c);
      throw err;
    }
  }

  async function drain(): Promise<void> {
    while (queue.length) {
      const batch = queue.splice(0, queue.length);
      let items: Committed[];
      try {
        items = await writeBatch(batch);
      } catch (cause) {
        const err = unavailable(cause, 'append failed');
        for (const p of batch) p.reject(err);
        continue;
      }
      fanOut(items);
      let at = 0;
      for (const p of batch) {
        p.resolve(items.slice(at, at + p.items.length));
        at += p.items.length;
      }
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

  /** A standby's wake-up: take the lock if it is free (then this center writes), else apply what was committed. */
  async function followOnce(): Promise<void> {
    if (!listener) {
      const c = new pg.Client(clientConfig);
      c.on('error', (err) => {
        log.warn(`postgres store: standby connection lost: ${err.message}`);
        if (listener === c) listener = undefined;
        c.end().catch(() => undefined);
      });
      c.on('notification', () => kickFollow());
      await c.connect();
      await c.query(`LISTEN ${CHANNEL}`);
      listener = c;
    }
    const got = await listener.query<{ locked: boolean }>('SELECT pg_try_advisory_lock($1, $2) AS locked', [...WRITER_LOCK]);
    if (got.rows[0]!.locked) {
      const c = listener;
      listener = undefined;
      await c.query(`UNLISTEN ${CHANNEL}`);
      c.removeAllListeners('notification');
      writer = c;
      try {
        await catchUp(c);
      } catch (err) {
        dropWriter(c); // releases the lock: the next wake-up tries again from a fresh connection
        throw err;
      }
      role = 'leader';
      log.warn(`postgres store: the writer lock was free; this center now writes the log (from seq ${lastSeq + 1})`);
      return;
    }
    for (;;) {
      const r = await listener.query<Row>('SELECT seq, line FROM envelopes WHERE seq > $1 ORDER BY seq LIMIT $2', [lastSeq, pageSize]);
      if (r.rows.length === 0) return;
      const batch: Committed[] = [];
      for (const row of r.rows) {
        const e = toCommitted(row);
        if (typeof e === 'string') throw new VaultMeshError('JOURNAL_CORRUPT', `stored envelope at seq ${row.seq}: ${e}`, { status: 500 });
        batch.push(e);
      }
      lastSeq = batch[batch.length - 1]!.envelope.seq;
      fanOut(batch);
      if (r.rows.length < pageSize) return;
    }
  }

  /** Runs followOnce, one at a time; a wake-up during a run runs it again after. */
  function kickFollow(): void {
    if (closed || role !== 'standby') return;
    if (following) {
      followAgain = true;
      return;
    }
    following = true;
    followOnce()
      .catch((err) => log.warn(`postgres store: standby could not follow the log: ${(err as Error).message}`))
      .finally(() => {
        following = false;
        if (followAgain) {
          followAgain = false;
          kickFollow();
        }
      });
  }

  function schedulePoll(): void {
    if (closed || role !== 'standby') return;
    pollTimer = timers.setTimeout(() => {
      kickFollow();
      schedulePoll();
    }, followPollMs);
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
    // The lock before the read: nobody appends between the replay and our first append. A standby replays what is
    // committed now and follows the rest.
    let w: pg.Client | undefined;
    try {
      w = await ensureWriter(true);
    } catch (err) {
      if (!(opts.standby && isVaultMeshError(err) && err.code === 'CENTER_LOCKED')) throw err;
      role = 'standby';
      log.info('postgres store: another center holds the writer lock; this one is a standby and follows its log');
    }
    const head = await (w ?? pool).query<{ last_seq: string }>('SELECT last_seq FROM log_head');
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
    heartbeatSummary: undefined,
    get lastSeq() {
      return lastSeq;
    },
    get role() {
      return role;
    },

    start() {
      if (started) return;
      started = true;
      if (role === 'standby') {
        kickFollow();
        schedulePoll();
      }
    },

    async entryAt(seq) {
      let r: pg.QueryResult<Row>;
      try {
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
        await pool.end().catch(() => undefined);
        throw err;
      }
    },

    append(drafts) {
      if (closed) return Promise.reject(new VaultMeshError('SHUTTING_DOWN', 'the command center is shutting down', { status: 503 }));
      if (!replayed) return Promise.reject(new Error('postgres store: append before replay'));
      if (role === 'standby') return Promise.reject(new VaultMeshError('JOURNAL_UNAVAILABLE', 'this center is a standby: another center writes the log (it takes over when that one is gone)', { status: 503 }));
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
        queue.push({ items, resolve, reject });
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

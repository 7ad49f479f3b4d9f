/**
 * `vaultmesh store copy --from <log dir | postgres URL> --to <log dir | postgres URL>`: moves an envelope log between
 * the JSONL store and the PostgreSQL store without changing a byte of any line. Entries go in seq order; each line
 * is copied as stored (never re-serialised), so ledger leaves and signed heads stay valid.
 *
 * The target must be empty: a log dir without journals, or a database whose envelope log is empty (its schema is
 * created or migrated first). A database target is written in one transaction, under the center's writer lock, so
 * a center cannot start on it half-way and a failed copy leaves nothing behind. Closed heartbeat segments of a
 * source dir are read in order; a dir target gets all heartbeats in heartbeats.jsonl.
 */
import { existsSync, mkdirSync, statSync } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import pg from 'pg';
import { journalForKind, type JournalName } from '../protocol/envelope.js';
import { VaultMeshError } from '../protocol/errors.js';
import { fsyncDirSync } from '../lib/atomic-file.js';
import { JOURNAL_FILES, journalPaths, listJournalFiles, listSegments, mergeJournals, parseJournalLine } from '../lib/journal/index.js';
import { migrate, WRITER_LOCK } from '../lib/postgres-schema.js';

export type StoreLocation = { kind: 'postgres'; url: string } | { kind: 'jsonl'; dir: string };

export function parseLocation(s: string): StoreLocation {
  if (/^postgres(ql)?:\/\//.test(s)) return { kind: 'postgres', url: s };
  if (s.trim() === '') throw new VaultMeshError('USAGE', 'a store location is a log dir or a postgres:// URL');
  return { kind: 'jsonl', dir: s };
}

/** One stored line on its way: its seq and journal come from the line itself. */
interface Entry {
  seq: number;
  journal: JournalName;
  line: Buffer;
}

interface Sink {
  write(e: Entry): Promise<void>;
  finish(): Promise<void>;
  abort(): Promise<void>;
}

const PAGE = 1000;
const JOURNAL_FILE_MODE = 0o640;
const LOG_DIR_MODE = 0o750;

async function readDir(dir: string, visit: (e: Entry) => Promise<void>): Promise<void> {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new VaultMeshError('USAGE', `log dir ${dir} does not exist`);
  const files = [...listSegments(dir).map((s) => s.path), ...journalPaths(dir)];
  let bad: string | undefined;
  const result = await mergeJournals(files, {
    onCorrupt: (c) => {
      bad = `${c.file}:${c.line.lineNo}: ${c.reason}`;
      return 'stop';
    },
    visit: ({ envelope, line }) => visit({ seq: envelope.seq, journal: journalForKind(envelope.kind), line: line.bytes }),
  });
  if (result.stopped) throw new VaultMeshError('JOURNAL_CORRUPT', `cannot copy a corrupt log: ${bad}`);
  if (result.tails.length) {
    throw new VaultMeshError('JOURNAL_CORRUPT', `${result.tails[0]!.file} ends in a torn line (an interrupted write); start the center once on it (it sets torn lines aside), then copy`);
  }
}

async function readDatabase(url: string, visit: (e: Entry) => Promise<void>, atSnapshot?: (client: pg.Client) => Promise<void>): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const exists = await client.query<{ t: string | null }>(`SELECT to_regclass('envelopes')::text AS t`);
    if (!exists.rows[0]?.t) throw new VaultMeshError('USAGE', 'the source database has no envelope log (run vaultmesh-cc migrate or start a center on it first)');
    // One snapshot for the whole read: a center appending meanwhile does not tear the copy.
    await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
    await atSnapshot?.(client);
    let after = 0;
    for (;;) {
      const r = await client.query<{ seq: string; journal: JournalName; line: Buffer }>('SELECT seq, journal, line FROM envelopes WHERE seq > $1 ORDER BY seq LIMIT $2', [after, PAGE]);
      for (const row of r.rows) await visit({ seq: Number(row.seq), journal: row.journal, line: row.line });
      if (r.rows.length < PAGE) break;
      after = Number(r.rows[r.rows.length - 1]!.seq);
    }
    await client.query('COMMIT');
  } finally {
    await client.end();
  }
}

async function dirSink(dir: string): Promise<Sink> {
  mkdirSync(dir, { recursive: true, mode: LOG_DIR_MODE });
  const present = (await listJournalFiles(dir)).filter((f) => statSync(f.path).size > 0);
  if (present.length) throw new VaultMeshError('USAGE', `the target log dir ${dir} already holds journals (${present.map((f) => f.path).join(', ')}); copy into an empty dir`);
  const handles = new Map<JournalName, FileHandle>();
  const buffers = new Map<JournalName, Buffer[]>();
  let buffered = 0;
  const NEWLINE = Buffer.from('\n');
  const drain = async () => {
    for (const [name, parts] of buffers) {
      let fh = handles.get(name);
      if (!fh) handles.set(name, (fh = await open(join(dir, JOURNAL_FILES[name]), 'a', JOURNAL_FILE_MODE)));
      await fh.write(Buffer.concat(parts));
    }
    buffers.clear();
    buffered = 0;
  };
  const closeAll = async () => {
    for (const fh of handles.values()) await fh.close();
    handles.clear();
  };
  return {
    async write(e) {
      let parts = buffers.get(e.journal);
      if (!parts) buffers.set(e.journal, (parts = []));
      parts.push(e.line, NEWLINE);
      buffered += e.line.length + 1;
      if (buffered >= 1 << 20) await drain();
    },
    async finish() {
      await drain();
      for (const fh of handles.values()) await fh.datasync();
      await closeAll();
      fsyncDirSync(dir);
    },
    abort: closeAll,
  };
}

async function databaseSink(url: string): Promise<Sink> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await migrate(client);
    const locked = await client.query<{ locked: boolean }>('SELECT pg_try_advisory_lock($1, $2) AS locked', [...WRITER_LOCK]);
    if (!locked.rows[0]!.locked) throw new VaultMeshError('CENTER_LOCKED', 'a center is running on the target database; stop it first');
    const head = await client.query<{ last_seq: string }>('SELECT last_seq FROM log_head');
    if (Number(head.rows[0]!.last_seq) !== 0) throw new VaultMeshError('USAGE', `the target database already holds an envelope log (up to seq ${head.rows[0]!.last_seq}); copy into an empty one`);
    await client.query('BEGIN');
  } catch (err) {
    await client.end().catch(() => undefined);
    throw err;
  }
  let rows: Array<Entry & { kind: string; id: string; author: string; node_id: string | null; ts: string }> = [];
  let lastSeq = 0;
  const insert = async () => {
    if (!rows.length) return;
    await client.query(
      `INSERT INTO envelopes (seq, journal, kind, id, author, node_id, ts, line)
       SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::timestamptz[], $8::bytea[])`,
      [rows.map((r) => r.seq), rows.map((r) => r.journal), rows.map((r) => r.kind), rows.map((r) => r.id), rows.map((r) => r.author), rows.map((r) => r.node_id), rows.map((r) => r.ts), rows.map((r) => r.line)],
    );
    rows = [];
  };
  return {
    async write(e) {
      const env = parseJournalLine(e.line);
      if (typeof env === 'string') throw new VaultMeshError('JOURNAL_CORRUPT', `seq ${e.seq}: ${env}`);
      rows.push({ ...e, kind: env.kind, id: env.id, author: env.author, node_id: env.node_id ?? null, ts: env.ts });
      lastSeq = e.seq;
      if (rows.length >= PAGE) await insert();
    },
    async finish() {
      await insert();
      await client.query('UPDATE log_head SET last_seq = $1', [lastSeq]);
      await client.query('COMMIT');
      await client.end();
    },
    async abort() {
      await client.query('ROLLBACK').catch(() => undefined);
      await client.end().catch(() => undefined);
    },
  };
}

export interface CopyResult {
  envelopes: number;
  lastSeq: number;
  bytes: number;
}

export async function copyStore(from: StoreLocation, to: StoreLocation, opts: { atSourceSnapshot?: (client: pg.Client) => Promise<void> } = {}): Promise<CopyResult> {
  if (from.kind === to.kind && (from.kind === 'jsonl' ? from.dir === (to as { dir: string }).dir : from.url === (to as { url: string }).url)) {
    throw new VaultMeshError('USAGE', '--from and --to are the same store');
  }
  const sink = to.kind === 'jsonl' ? await dirSink(to.dir) : await databaseSink(to.url);
  const result: CopyResult = { envelopes: 0, lastSeq: 0, bytes: 0 };
  const visit = async (e: Entry) => {
    await sink.write(e);
    result.envelopes++;
    result.lastSeq = e.seq;
    result.bytes += e.line.length + 1;
  };
  try {
    if (from.kind === 'jsonl') await readDir(from.dir, visit);
    else await readDatabase(from.url, visit, opts.atSourceSnapshot);
    await sink.finish();
  } catch (err) {
    await sink.abort();
    throw err;
  }
  return result;
}

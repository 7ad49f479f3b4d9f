/**
 * The append-only journal set: one JSONL file per journal name in the log dir, one canonical envelope per line,
 * a global `seq` assigned here. Appends are acknowledged only when durable. Group commit: appends that arrive
 * while a write is in flight wait for the next batch, and the whole batch shares one durable write per file: the
 * files are opened O_DSYNC (unless fsync is off), so the write returns once its data is on disk, as a write followed
 * by fdatasync would, in one trip to the thread pool instead of two. A failed write rolls the file back to its last
 * acknowledged length and syncs that, so the file never holds a half line that later appends would bury in the
 * middle, and a line answered 503 never reappears after a crash.
 * This is the JSONL store's append path (jsonl-store.ts); nothing else in the center opens it.
 */
import { open, rename, type FileHandle } from 'node:fs/promises';
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { constants, mkdirSync } from 'node:fs';
import { JOURNAL_FILES, type EnvelopeDraft, type JournalName } from '../../protocol/envelope.js';
import { VaultMeshError } from '../../protocol/errors.js';
import { fsyncDir, fsyncDirSync } from '../../lib/atomic-file.js';
import { consoleLogger, type Logger } from '../../lib/logger.js';
import { segmentName } from '../../lib/journal/index.js';
import { committedEntry, type Committed } from './envelope-store.js';
import { createDrainLoop } from './drain-loop.js';

export type { Committed };

export type FsyncMode = 'always' | 'batch' | 'off';

export interface JournalOptions {
  dir: string;
  fsync?: FsyncMode;
  /** Highest seq already in the journals (from replay). */
  lastSeq?: number;
  now?: () => Date;
  newId?: () => string;
  /** Called once per durable batch, in seq order, before any append of the batch is acknowledged. */
  onCommit?: (batch: Committed[]) => void;
  /**
   * Observability hooks (metrics). With the files opened O_DSYNC the write and the sync are one call: `writeMs` and
   * `fsyncMs` are both the time that made the batch durable (with fsync off, `fsyncMs` is 0).
   */
  onFlush?: (stats: { entries: number; writeMs: number; fsyncMs: number }) => void;
  /**
   * Heartbeat retention: once heartbeats.jsonl reaches `maxBytes` it is renamed to a closed segment
   * (heartbeat-segments.ts) between two batches, and `onRotate` runs. 0 disables rotation.
   */
  rotateHeartbeats?: { maxBytes: number; onRotate: (segment: { path: string; lastSeq: number }) => void };
  /** Where failures that do not fail an append are reported (a throwing hook, a failed rotation). */
  log?: Logger;
  /** The file operations of the write path (default: the real ones); tests pass failing ones to check rollback. */
  fileOps?: Partial<JournalFileOps>;
}

/** The few file operations a batch and its rollback need; passed in so disk faults can be injected without mocks. */
export interface JournalFileOps {
  /** On a file opened O_DSYNC (fsync batch or always) the data is durable once this resolves. */
  write(fh: FileHandle, data: Buffer): Promise<void>;
  /** Syncs a rollback's truncate (O_DSYNC covers writes, not truncation). */
  datasync(fh: FileHandle): Promise<void>;
  truncate(fh: FileHandle, size: number): Promise<void>;
}

/** Journals, segments and the summary are created 0640: they hold findings and receipts, not for every local user. */
export const JOURNAL_FILE_MODE = 0o640;

export interface Journal {
  /**
   * Assigns seq and ts, and resolves with the committed entries once all of them are durable. The drafts of one call
   * are written in one batch (all or nothing), also with `--fsync always`.
   */
  append(drafts: readonly EnvelopeDraft[]): Promise<Committed[]>;
  readonly lastSeq: number;
  /** Resolves when everything appended so far is durable (or failed). */
  flush(): Promise<void>;
  close(): Promise<void>;
}

interface Pending {
  items: Committed[];
  resolve: (committed: Committed[]) => void;
  reject: (err: unknown) => void;
}

interface FileState {
  fh: FileHandle;
  size: number;
  dirty: boolean; // a failed write may have left bytes past `size`
  lastSeq: number;
}

export const realFileOps: JournalFileOps = {
  async write(fh, data) {
    let off = 0;
    while (off < data.length) {
      const { bytesWritten } = await fh.write(data, off, data.length - off);
      off += bytesWritten;
    }
  },
  datasync: (fh) => fh.datasync(),
  truncate: (fh, size) => fh.truncate(size),
};

export async function openJournal(opts: JournalOptions): Promise<Journal> {
  const fsyncMode = opts.fsync ?? 'batch';
  const now = opts.now ?? (() => new Date());
  const newId = opts.newId ?? randomUUID;
  const ops: JournalFileOps = { ...realFileOps, ...opts.fileOps };
  const log = opts.log ?? consoleLogger;
  mkdirSync(opts.dir, { recursive: true });

  // O_DSYNC: each write returns once its data (and the size that reaches it) is on disk, like write + fdatasync.
  const appendFlags = constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT | (fsyncMode === 'off' ? 0 : constants.O_DSYNC);
  const openAppend = (path: string) => open(path, appendFlags, JOURNAL_FILE_MODE);
  const files = new Map<JournalName, FileState>();
  for (const name of Object.keys(JOURNAL_FILES) as JournalName[]) {
    const fh = await openAppend(join(opts.dir, JOURNAL_FILES[name]));
    files.set(name, { fh, size: (await fh.stat()).size, dirty: false, lastSeq: 0 });
  }
  fsyncDirSync(opts.dir); // newly created journal files must survive a crash too

  let lastSeq = opts.lastSeq ?? 0;
  let queue: Pending[] = [];
  let closed = false;

  /**
   * Takes a file back to its acknowledged length and makes that durable. Until the truncate is synced, a crash could
   * bring back lines whose appends were answered 503, so the file stays dirty (and the journal refuses appends)
   * until both steps succeed.
   */
  async function rollBack(f: FileState): Promise<void> {
    f.dirty = true;
    await ops.truncate(f.fh, f.size);
    if (fsyncMode !== 'off') await ops.datasync(f.fh);
    f.dirty = false;
  }

  async function writeBatch(batch: Pending[]): Promise<void> {
    // A file left dirty by an earlier failure is repaired before anything else is written, whichever files this
    // batch touches: no append is acknowledged while a failed one could still reappear after a crash.
    for (const f of files.values()) if (f.dirty) await rollBack(f);
    const byFile = new Map<JournalName, { parts: Buffer[]; lastSeq: number }>();
    for (const p of batch) {
      for (const item of p.items) {
        let entry = byFile.get(item.journal);
        if (!entry) byFile.set(item.journal, (entry = { parts: [], lastSeq: 0 }));
        entry.parts.push(item.line, NEWLINE);
        entry.lastSeq = item.envelope.seq;
      }
    }
    const data = new Map([...byFile].map(([name, e]) => [name, Buffer.concat(e.parts)]));
    const t0 = performance.now();
    // A batch is all or nothing: until every file it touches is written and synced, those files count as dirty, so
    // a failure in any of them rolls all of them back to their acknowledged length.
    // allSettled, not all: no write may still be in flight when the rollback truncates.
    const settle = async (work: (f: FileState, name: JournalName) => Promise<void>) => {
      const results = await Promise.allSettled([...data.keys()].map((name) => work(files.get(name)!, name)));
      const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (failed) {
        // Roll back now; a file whose rollback fails stays dirty and is retried before the next batch.
        await Promise.allSettled([...data.keys()].map((name) => rollBack(files.get(name)!)));
        throw failed.reason;
      }
    };
    await settle(async (f, name) => {
      f.dirty = true;
      await ops.write(f.fh, data.get(name)!); // durable on return (O_DSYNC), unless fsync is off
    });
    const ms = performance.now() - t0;
    for (const [name, bytes] of data) {
      const f = files.get(name)!;
      f.size += bytes.length;
      f.dirty = false;
      f.lastSeq = byFile.get(name)!.lastSeq;
    }
    opts.onFlush?.({ entries: batch.reduce((n, p) => n + p.items.length, 0), writeMs: ms, fsyncMs: fsyncMode === 'off' ? 0 : ms });
  }

  async function drain(): Promise<void> {
    while (queue.length) {
      // 'always' gives every append call its own durable write; 'batch' and 'off' take all that waited.
      const batch = fsyncMode === 'always' ? queue.splice(0, 1) : queue.splice(0, queue.length);
      try {
        await writeBatch(batch);
      } catch (cause) {
        const err = new VaultMeshError('JOURNAL_UNAVAILABLE', `journal write failed: ${(cause as Error).message}`, { status: 503, cause });
        for (const p of batch) p.reject(err);
        continue;
      }
      try {
        opts.onCommit?.(batch.flatMap((p) => p.items));
      } catch (err) {
        // The data is durable; a failing observer must not un-acknowledge it. Surface loudly instead.
        log.error(`journal: onCommit hook failed: ${(err as Error)?.stack ?? String(err)}`);
      }
      for (const p of batch) p.resolve(p.items);
      await maybeRotate();
    }
  }

  async function maybeRotate(): Promise<void> {
    const r = opts.rotateHeartbeats;
    const f = files.get('heartbeats')!;
    // f.lastSeq is known only once this process wrote a heartbeat: before that the segment would be named after seq 0
    // and summarised through seq 0, and a later replay would count its heartbeats twice.
    if (!r || r.maxBytes <= 0 || f.size < r.maxBytes || f.dirty || f.lastSeq === 0) return;
    const active = join(opts.dir, JOURNAL_FILES.heartbeats);
    const segment = join(opts.dir, segmentName(f.lastSeq));
    try {
      if (fsyncMode === 'off') await f.fh.datasync();
      await rename(active, segment);
    } catch (err) {
      log.error(`journal: heartbeat rotation failed, keeping ${active}: ${(err as Error).message}`);
      return;
    }
    // From here the old handle points at the segment; the next heartbeat write goes to a fresh active file. If the
    // new file cannot be opened (no inodes, EMFILE), the segment is renamed back and stays the active file.
    let fresh: FileHandle;
    try {
      fresh = await openAppend(active);
      await fsyncDir(opts.dir);
    } catch (err) {
      log.error(`journal: cannot open a new ${active} after rotation, keeping the old one: ${(err as Error).message}`);
      await rename(segment, active).catch((e: Error) => log.error(`journal: renaming ${segment} back failed: ${e.message}`));
      return;
    }
    const old = f.fh;
    f.fh = fresh;
    f.size = 0;
    await old.close().catch((err: Error) => log.error(`journal: closing the rotated segment failed: ${err.message}`));
    try {
      r.onRotate({ path: segment, lastSeq: f.lastSeq });
    } catch (err) {
      log.error(`journal: onRotate hook failed: ${(err as Error)?.stack ?? String(err)}`);
    }
  }

  const loop = createDrainLoop(drain, () => queue.length > 0);

  return {
    get lastSeq() {
      return lastSeq;
    },
    append(drafts) {
      if (closed) return Promise.reject(new VaultMeshError('SHUTTING_DOWN', 'the command center is shutting down', { status: 503 }));
      if (drafts.length === 0) return Promise.resolve([]);
      // Every draft is made canonical before any seq is taken: one with no canonical form (a lone surrogate) is
      // refused without leaving a gap in the sequence.
      const items: Committed[] = [];
      let seq = lastSeq;
      try {
        for (const draft of drafts) items.push(committedEntry(draft, draft.id ?? newId(), ++seq, now().toISOString()));
      } catch (err) {
        return Promise.reject(err);
      }
      lastSeq = seq;
      return new Promise<Committed[]>((resolve, reject) => {
        queue.push({ items, resolve, reject });
        loop.kick();
      });
    },
    async flush() {
      await loop.idle();
    },
    async close() {
      closed = true;
      await loop.idle();
      for (const f of files.values()) await f.fh.close();
    },
  };
}

const NEWLINE = Buffer.from('\n');

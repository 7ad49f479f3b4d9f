/**
 * Following journals as they grow, like `tail -F`: what `vaultmesh logs tail` (and any reader beside a running
 * center) needs after its first pass.
 *
 * Files are tracked by inode through an open handle, not by name: a rotation (rename away + new file) drains the
 * old inode to its end before the new file is read from its start; truncation rewinds; a deleted file is dropped
 * and picked up again when recreated. Wake-ups come from fs.watch on the log dir (inotify on Linux reports writes
 * to the files in it, and unlike a watch on the file itself it survives renames), backed by a slow stat poll
 * for file systems where watch is silent (NFS, some containers). Nothing spins.
 */
import { watch as fsWatch, type FSWatcher } from 'node:fs';
import { open, stat, type FileHandle } from 'node:fs/promises';
import type { Envelope, JournalName } from '../../protocol/envelope.js';
import { VaultMeshError } from '../../protocol/errors.js';
import { listJournalFiles, type JournalFile } from './files.js';
import { parseJournalLine } from './reader.js';

export type FileChange = 'unchanged' | 'grown' | 'truncated';

/** What happened to a tracked inode since we last read it, from its size now. */
export function classifyChange(offset: number, size: number): FileChange {
  if (size < offset) return 'truncated';
  return size > offset ? 'grown' : 'unchanged';
}

/** Splits `data` on '\n' into complete lines and the unterminated rest (kept until its newline arrives). */
export function splitLines(data: Buffer): { lines: Buffer[]; rest: Buffer } {
  const lines: Buffer[] = [];
  let start = 0;
  for (let nl = data.indexOf(10, start); nl !== -1; nl = data.indexOf(10, start)) {
    lines.push(data.subarray(start, nl));
    start = nl + 1;
  }
  return { lines, rest: data.subarray(start) };
}

interface Tracked {
  path: string;
  fh: FileHandle;
  /** Reused for every read of this file: its lines are handed out (and copied by the consumer) before the next read. */
  readBuf?: Buffer;
  offset: number;
  nextLineNo: number;
  partial: Buffer;
}

/** One line read while following; `line` is only valid until the callback returns. */
export interface FollowedEntry {
  envelope: Envelope;
  line: Buffer;
}

const READ_CHUNK = 256 * 1024;
const inodeKey = (st: { dev: number; ino: number }): string => `${st.dev}:${st.ino}`;

/**
 * The journal files of a log dir held open, so a first pass and the follow after it read exactly the same inodes
 * (a rotation between the two cannot make lines go missing). `resumeAt` records where the first pass ended.
 */
export interface PinnedJournals {
  files: JournalFile[];
  resumeAt(ends: Record<string, { offset: number; lineNo: number }>): void;
  /** Follows until `signal` aborts or `isDone()`; `onEntries` gets each round's new lines in seq order. */
  follow(opts: FollowOptions): Promise<void>;
  close(): Promise<void>;
}

export interface FollowOptions {
  onEntries: (entries: FollowedEntry[]) => Promise<void>;
  /** True once the consumer is gone (its output closed): ends the loop quietly, an error then is not reported. */
  isDone?: () => boolean;
  skipCorrupt: boolean;
  warn: (message: string) => void;
  signal: AbortSignal;
  /** Fallback stat poll period; 1 s keeps CPU at ~0 and still catches changes watch misses. */
  pollMs?: number;
  watch?: typeof fsWatch;
}

export async function pinJournals(dir: string, journals?: ReadonlySet<JournalName>): Promise<PinnedJournals> {
  const tracked = new Map<string, Tracked>();
  const files: JournalFile[] = [];
  for (const f of await listJournalFiles(dir, journals)) {
    try {
      const fh = await open(f.path, 'r');
      const st = await fh.stat();
      tracked.set(inodeKey(st), { path: f.path, fh, offset: 0, nextLineNo: 1, partial: Buffer.alloc(0) });
      files.push(f);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
  }
  return {
    files,
    resumeAt(ends) {
      for (const t of tracked.values()) {
        const end = ends[t.path];
        if (end) {
          t.offset = end.offset;
          t.nextLineNo = end.lineNo;
        }
      }
    },
    follow: (opts) => follow(dir, journals, tracked, opts),
    async close() {
      for (const t of tracked.values()) await t.fh.close().catch(() => undefined);
    },
  };
}

async function follow(dir: string, journals: ReadonlySet<JournalName> | undefined, tracked: Map<string, Tracked>, opts: FollowOptions): Promise<void> {
  const { signal } = opts;
  const watch = opts.watch ?? fsWatch;
  const isDone = opts.isDone ?? (() => false);

  /** Reads whatever is new in one file (bounded per call); returns parsed entries and whether more is waiting. */
  const drain = async (t: Tracked, into: FollowedEntry[]): Promise<boolean> => {
    const buf = (t.readBuf ??= Buffer.allocUnsafe(READ_CHUNK));
    const { bytesRead } = await t.fh.read(buf, 0, READ_CHUNK, t.offset);
    if (bytesRead === 0) return false;
    t.offset += bytesRead;
    const data = t.partial.length ? Buffer.concat([t.partial, buf.subarray(0, bytesRead)]) : buf.subarray(0, bytesRead);
    const { lines, rest } = splitLines(data);
    t.partial = Buffer.from(rest);
    for (const bytes of lines) {
      const lineNo = t.nextLineNo++;
      const parsed = parseJournalLine(bytes);
      if (typeof parsed === 'string') {
        const where = `${t.path}:${lineNo}: ${parsed}`;
        if (!opts.skipCorrupt) throw new VaultMeshError('JOURNAL_CORRUPT', where, { status: 500 });
        opts.warn(`${where} (skipped)`);
        continue;
      }
      into.push({ envelope: parsed, line: bytes });
    }
    return bytesRead === READ_CHUNK;
  };

  const reopenAt = (t: Tracked, reason: string): void => {
    opts.warn(`${t.path}: ${reason}; reading from the start`);
    t.offset = 0;
    t.nextLineNo = 1;
    t.partial = Buffer.alloc(0);
  };

  /** One round: reconcile names with inodes, read every tracked file to its end, hand out new lines in seq order. */
  const check = async (): Promise<void> => {
    let listed: JournalFile[] = [];
    try {
      listed = await listJournalFiles(dir, journals);
    } catch (err) {
      // The dir itself may be gone for a moment (recreated by a deploy); keep draining what is open.
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    const present = new Set<string>();
    for (const f of listed) {
      let st;
      try {
        st = await stat(f.path);
      } catch {
        continue; // Renamed or deleted between readdir and stat: the next round sees the new state.
      }
      const key = inodeKey(st);
      present.add(key);
      const known = tracked.get(key);
      if (known) {
        known.path = f.path; // Rotated into a segment name: same inode, keep reading where we were.
        if (classifyChange(known.offset, st.size) === 'truncated') reopenAt(known, 'truncated');
        continue;
      }
      try {
        const fh = await open(f.path, 'r');
        const fst = await fh.stat();
        if (inodeKey(fst) !== key) {
          await fh.close(); // Replaced again under us; the next round will pick the newest one.
          continue;
        }
        // A file we have never seen is new (rotation, recreation): all of it is news.
        tracked.set(key, { path: f.path, fh, offset: 0, nextLineNo: 1, partial: Buffer.alloc(0) });
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      }
    }

    for (;;) {
      const batch: FollowedEntry[] = [];
      let more = false;
      for (const t of tracked.values()) if (await drain(t, batch)) more = true;
      // Lines that arrived in different journals since the last round come out in the center's order.
      batch.sort((a, b) => a.envelope.seq - b.envelope.seq);
      await opts.onEntries(batch);
      if (!more) break;
    }

    // Inodes no longer listed were rotated away (to a name we do not read) or deleted: drained above, so let go.
    for (const [key, t] of tracked) {
      if (!present.has(key)) {
        tracked.delete(key);
        await t.fh.close().catch(() => undefined);
      }
    }
  };

  await new Promise<void>((resolve, reject) => {
    let running = false;
    let again = false;
    let finished = false;
    let watcher: FSWatcher | undefined;

    const finish = (err?: unknown): void => {
      if (finished) return;
      finished = true;
      clearInterval(poll);
      watcher?.close();
      signal.removeEventListener('abort', onAbort);
      if (err) reject(err);
      else resolve();
    };
    const onAbort = (): void => {
      // Let a round in progress complete its writes; `run` finishes once it sees the signal.
      if (!running) finish();
    };

    const run = async (): Promise<void> => {
      if (running) {
        again = true;
        return;
      }
      running = true;
      try {
        do {
          again = false;
          await check();
        } while (again && !signal.aborted);
      } catch (err) {
        running = false;
        if (isDone()) finish();
        else finish(err);
        return;
      }
      running = false;
      if (signal.aborted || isDone()) finish();
    };
    const wake = (): void => void run();

    const startWatch = (): void => {
      if (watcher) return;
      try {
        watcher = watch(dir, { persistent: true }, wake);
        watcher.on('error', () => {
          // The dir went away: fall back to the poll, which re-arms the watch when it is back.
          watcher?.close();
          watcher = undefined;
        });
      } catch {
        watcher = undefined;
      }
    };

    const poll = setInterval(() => {
      startWatch();
      wake();
    }, opts.pollMs ?? 1000);
    signal.addEventListener('abort', onAbort);
    startWatch();
    // Catch anything appended between the first pass and the watch being armed.
    wake();
  });
}

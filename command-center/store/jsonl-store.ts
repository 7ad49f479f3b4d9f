/**
 * The JSONL store (`--store jsonl`, the default): the `EnvelopeStore` over the journals of one log dir. It wraps
 * the append path (journal.ts: group commit, rollback), replay and its recovery (replay.ts), heartbeat retention
 * (heartbeat-segments.ts), and reads the files back through the journal module (lib/journal/).
 *
 * It also owns the log dir: created 0750, and tightened to 0750 at start when it is looser (the journals hold
 * findings and receipts); a dir it cannot tighten is reported through the logger.
 */
import { chmodSync, existsSync, mkdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { journalForKind, type Envelope, type JournalName } from '../../protocol/envelope.js';
import { VaultMeshError } from '../../protocol/errors.js';
import type { Logger } from '../../lib/logger.js';
import { JOURNAL_FILES, journalPaths, LineSource, listSegments, mergeJournals, readLinesBackward, parseJournalLine, seekJournal } from '../../lib/journal/index.js';
import type { Committed, EnvelopeReader, EnvelopeStore, TailFrom, TailOptions, Visit } from './envelope-store.js';
import { openJournal, type FsyncMode, type Journal, type JournalFileOps } from './journal.js';
import { replayJournals } from './replay.js';
import { createSummaryWriter, pruneSegments, readSummary, segmentsToReplay, type HeartbeatSummary } from './heartbeat-segments.js';

export interface JsonlStoreOptions {
  dir: string;
  fsync?: FsyncMode;
  /** `--repair`: quarantine corrupt lines instead of refusing to start. */
  repair?: boolean;
  now?: () => Date;
  log: Logger;
  /** The commit fan-out: each durable batch, in seq order, before any append of it resolves. */
  onCommit: (batch: Committed[]) => void;
  onFlush?: (stats: { entries: number; writeMs: number; fsyncMs: number }) => void;
  /** Heartbeat retention: rotate heartbeats.jsonl at this size (0: never), delete segments older than this (0: keep). */
  heartbeatSegmentBytes?: number;
  heartbeatRetentionDays?: number;
  /** What state knows of heartbeats up to a seq: written as the summary at each rotation. */
  summarizeHeartbeats?: (throughSeq: number) => HeartbeatSummary;
  /** After a rotation and its summary (a state snapshot taken before it can no longer be used: take a new one). */
  onRotated?: () => void;
  fileOps?: Partial<JournalFileOps>;
  /** Test seams for the log dir's mode. */
  dirOps?: { chmod?: (path: string, mode: number) => void };
}

export const LOG_DIR_MODE = 0o750;

/**
 * Creates the log dir (0750) or tightens an existing one to at most 0750. Returns what it did; a dir others can
 * still read after that is reported through `log.warn`, since anyone on the host could read findings and receipts.
 */
export function prepareLogDir(dir: string, log: Logger, chmod: (path: string, mode: number) => void = chmodSync): { mode: number; tightened: boolean } {
  mkdirSync(dir, { recursive: true, mode: LOG_DIR_MODE });
  const mode = statSync(dir).mode & 0o7777;
  if ((mode & ~LOG_DIR_MODE & 0o777) === 0) return { mode, tightened: false };
  const tighter = mode & (LOG_DIR_MODE | 0o7000);
  try {
    chmod(dir, tighter);
    return { mode: tighter, tightened: true };
  } catch (err) {
    if (mode & 0o007) log.warn(`log dir ${dir} is mode ${mode.toString(8)} (other users can read the journals) and could not be tightened to 0750: ${(err as Error).message}; run: chmod 750 ${dir}`);
    return { mode, tightened: false };
  }
}

const committed = (envelope: Envelope, line: Buffer): Committed => ({ envelope, journal: journalForKind(envelope.kind), line });

/**
 * The read side of the JSONL store over a log dir: also usable alone (offline tools, tests). `durableSeq` bounds
 * `tail` and `readNewestFirst` to what is acknowledged; a line being written or synced is never read.
 */
export function createJsonlReader(opts: { dir: string; durableSeq?: () => number }): EnvelopeReader {
  const { dir } = opts;
  const durableSeq = opts.durableSeq ?? (() => Number.MAX_SAFE_INTEGER);
  // Closed heartbeat segments come before the active file: together they are the heartbeat journal in seq order.
  const filesOf = (names: readonly JournalName[]): string[] =>
    names.flatMap((n) => [...(n === 'heartbeats' ? listSegments(dir).map((s) => s.path) : []), join(dir, JOURNAL_FILES[n])]);

  return {
    async tail(from: TailFrom, visit: Visit, tailOpts: TailOptions = {}) {
      const upTo = durableSeq();
      const files = filesOf(tailOpts.journals ?? (Object.keys(JOURNAL_FILES) as JournalName[]));
      const start = 'afterSeq' in from ? (e: Envelope) => e.seq > from.afterSeq : (e: Envelope) => Date.parse(e.ts) >= from.tsMs;
      const fromOffsets: Record<string, { offset: number; lineNo: number }> = {};
      // lineNo names lines in corruption reports only; after a seek it is unknown, so it reads 0.
      for (const f of files) fromOffsets[f] = { offset: await seekJournal(f, start), lineNo: 0 };
      let corrupt: string | undefined;
      try {
        const result = await mergeJournals(files, {
          fromOffsets,
          onCorrupt: (bad) => {
            if (tailOpts.onCorrupt === 'skip') return 'skip';
            corrupt = `${bad.file}:${bad.line.lineNo}: ${bad.reason}`;
            return 'stop';
          },
          visit: ({ envelope, line }) => {
            // mergeJournals has no early exit: a sentinel error ends it and closes its files (in its finally).
            if (envelope.seq > upTo || visit(committed(envelope, line.bytes)) === false) throw STOP;
          },
        });
        if (result.stopped) throw new VaultMeshError('JOURNAL_CORRUPT', corrupt ?? 'corrupt journal line', { status: 500 });
      } catch (err) {
        if (err !== STOP) throw err;
      }
    },

    async readNewestFirst(name, visit) {
      const upTo = durableSeq();
      for (const file of filesOf([name]).reverse()) {
        let stopped = false;
        await readLinesBackward(file, (line) => {
          const env = parseJournalLine(line);
          if (typeof env === 'string' || env.seq > upTo) return true; // bad lines were refused or quarantined by replay
          if (visit(committed(env, line)) === false) {
            stopped = true;
            return false;
          }
          return true;
        });
        if (stopped) return;
      }
    },

    async readLines(name, visit) {
      for (const file of filesOf([name])) {
        const source = new LineSource(file);
        try {
          await source.open();
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue;
          throw err;
        }
        try {
          // A torn tail is not a line (replay has set it aside before anyone reads).
          for (let batch = await source.nextBatch(); batch; batch = await source.nextBatch()) for (const l of batch) visit(l.bytes);
        } finally {
          await source.close();
        }
      }
    },
  };
}

export function createJsonlStore(opts: JsonlStoreOptions): EnvelopeStore {
  const { dir, log } = opts;
  const now = opts.now ?? (() => new Date());
  prepareLogDir(dir, log, opts.dirOps?.chmod);
  const heartbeatSummary = readSummary(dir);
  let journal: Journal | undefined;
  const summaryWriter = createSummaryWriter(dir);
  let summaryDone: Promise<unknown> = Promise.resolve(); // every rotation's summary write and what follows it
  let replayed = false;
  let lastSeq = 0;

  const reader = createJsonlReader({ dir, durableSeq: () => lastSeq });
  const open = (): Journal => {
    if (!journal) throw new Error('jsonl store: append before replay');
    return journal;
  };

  return {
    heartbeatSummary,
    get lastSeq() {
      return lastSeq;
    },

    async entryAt(seq) {
      // Before replay nothing bounds the read: every complete line is a candidate (a torn tail is not a line).
      let found: Committed | undefined;
      await createJsonlReader({ dir }).tail({ afterSeq: seq - 1 }, (entry) => {
        if (entry.envelope.seq === seq) found = entry;
        return false;
      }, { onCorrupt: 'skip' });
      return found;
    },

    async replay(visit, replayOpts = {}) {
      if (replayed) throw new Error('jsonl store: replay runs once, at start');
      replayed = true;
      const afterSeq = replayOpts.afterSeq ?? 0;
      // Behind a snapshot the tail may begin in any segment, so all of them are entered (each by a binary search).
      const segments = afterSeq > 0 ? listSegments(dir) : segmentsToReplay(listSegments(dir), heartbeatSummary);
      const report = await replayJournals({
        dir,
        files: [...segments.map((s) => s.path), ...journalPaths(dir)],
        afterSeq,
        ...(opts.repair !== undefined ? { repair: opts.repair } : {}),
        ...(replayOpts.reuseBuffers ? { reuseBuffers: true } : {}),
        now,
        visit: ({ envelope, line }) => visit(committed(envelope, line.bytes)),
      });
      lastSeq = report.lastSeq;
      const summarize = opts.summarizeHeartbeats;
      journal = await openJournal({
        dir,
        ...(opts.fsync ? { fsync: opts.fsync } : {}),
        lastSeq: report.lastSeq,
        now,
        log,
        onCommit: (batch) => {
          lastSeq = batch[batch.length - 1]!.envelope.seq;
          opts.onCommit(batch);
        },
        ...(opts.onFlush ? { onFlush: opts.onFlush } : {}),
        ...(opts.fileOps ? { fileOps: opts.fileOps } : {}),
        rotateHeartbeats: {
          maxBytes: summarize ? (opts.heartbeatSegmentBytes ?? 0) : 0,
          onRotate: (segment) => {
            // The summary is taken now (state is at the segment's last seq) and written off the event loop. What
            // relied on it being on disk waits for it: the snapshot (taken after the summary) and retention (a
            // segment is deleted only once a durable summary covers it). A crash before it is written leaves the
            // previous summary, with which replay reads one more segment.
            log.info(`rotated heartbeats into ${segment.path}`);
            const written = summaryWriter.write(JSON.stringify(summarize!(segment.lastSeq))).then(
              () => {
                opts.onRotated?.();
                const days = opts.heartbeatRetentionDays ?? 0;
                if (days > 0) for (const p of pruneSegments(dir, days * 86_400_000, now().getTime())) log.info(`retention: deleted ${p}`);
              },
              (err: unknown) => log.error(`heartbeat summary not written (segments kept; replay reads one more): ${(err as Error).message}`),
            );
            summaryDone = Promise.all([summaryDone, written]);
          },
        },
      });
      return report;
    },

    append: async (drafts) => open().append(drafts),

    tail: reader.tail,
    readNewestFirst: reader.readNewestFirst,
    readLines: reader.readLines,

    flush: () => journal?.flush() ?? Promise.resolve(),
    async close() {
      await journal?.close();
      // A rotation's summary (and what follows it) finishes before the store is closed.
      await summaryDone;
    },
  };
}

const STOP = new Error('tail stopped');

/** The journal files of a log dir (active or closed segments) that hold at least one byte, relative to it. */
export function writtenJournals(logDir: string): string[] {
  const paths = [...listSegments(logDir).map((s) => s.path), ...journalPaths(logDir)];
  return paths.filter((p) => existsSync(p) && statSync(p).size > 0).map((p) => p.slice(logDir.length + 1));
}

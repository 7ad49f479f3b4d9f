/**
 * Takes state snapshots while the center runs: after every `everyEntries` committed entries, every `everyMs` if
 * anything was committed since the last one, and once more on a clean shutdown (after the journal is closed, so it
 * covers every acknowledged entry).
 *
 * A snapshot starts between two commits, so every projection is at the same seq: the capture fixes that state in its
 * first turn and encodes the large parts in slices that yield to the event loop (center-state.ts), and hashing and
 * writing yield too. The longest turn is the pause a snapshot costs requests: measured and exported. One at a time;
 * a trigger during a write is remembered and served after it.
 */
import { createHash } from 'node:crypto';
import type { Timers } from '../../lib/timers.js';
import type { Committed } from '../store/envelope-store.js';
import type { Projection } from '../store/commit-fanout.js';
import { SNAPSHOT_FORMAT, SNAPSHOT_VERSION, type SnapshotHeader } from './snapshot-format.js';
import { writeSnapshotFile } from './snapshot-file.js';

export interface SnapshotStats {
  seq: number;
  bytes: number;
  /** The longest time the event loop was held in one turn of the capture. */
  pauseMs: number;
  /** From the start of the capture to the rename (the write yields). */
  totalMs: number;
}

export interface SnapshotterOptions {
  file: string;
  /** Entries committed since the last snapshot that trigger the next one (0: never by count). */
  everyEntries: number;
  /** Period of the time trigger in ms (0: never by time). */
  everyMs: number;
  timers: Timers;
  now: () => Date;
  centerVersion: string;
  settings: Record<string, number | string>;
  /**
   * Serialises the projections (captureState) as they are when it is called, between commits; may go on in slices,
   * awaiting `yieldToLoop` between them.
   */
  capture: (yieldToLoop: () => Promise<void>) => Buffer[] | Promise<Buffer[]>;
  log: { info(msg: string): void; warn(msg: string): void };
  onWritten?: (stats: SnapshotStats) => void;
}

export interface Snapshotter {
  /** The projection that follows the last stored entry (replayed or committed) and counts toward the next snapshot. */
  readonly projection: Projection;
  /** The entry a restored snapshot covers, when replay after it visited nothing. */
  coveredBy(seq: number, lineSha256: string): void;
  start(): void;
  /** Takes a snapshot now if the state moved since the last one; resolves when it is written (or failed). */
  snapshot(): Promise<SnapshotStats | undefined>;
  /** Stops the triggers, waits for a write in flight, then takes the final snapshot. */
  close(): Promise<void>;
  readonly last: SnapshotStats | undefined;
}

export function createSnapshotter(opts: SnapshotterOptions): Snapshotter {
  let lastSeq = 0;
  let lastLine: Buffer | undefined;
  let lastLineSha: string | undefined;
  let sinceLast = 0;
  let writtenSeq = 0;
  let running: Promise<SnapshotStats | undefined> | undefined;
  let again = false;
  let timer: unknown;
  let countTrigger: unknown;
  let closed = false;
  let last: SnapshotStats | undefined;

  const mark = (e: Committed) => {
    lastSeq = e.envelope.seq;
    lastLine = e.line;
    lastLineSha = undefined;
  };
  /**
   * A replayed line may sit in a read buffer that the next entries overwrite (ReplayOptions.reuseBuffers), so its
   * bytes are copied, into one scratch buffer reused across the replay rather than a new one per entry.
   */
  let scratch = Buffer.alloc(0);
  const markReplayed = (e: Committed) => {
    if (scratch.length < e.line.length) scratch = Buffer.allocUnsafe(Math.max(e.line.length, 2 * scratch.length, 1024));
    e.line.copy(scratch);
    lastSeq = e.envelope.seq;
    lastLine = scratch.subarray(0, e.line.length);
    lastLineSha = undefined;
  };

  const take = async (): Promise<SnapshotStats | undefined> => {
    if (lastSeq === 0 || lastSeq === writtenSeq) return undefined;
    const t0 = performance.now();
    const seq = lastSeq;
    const lineSha = lastLineSha ?? createHash('sha256').update(lastLine!).digest('hex');
    let pauseMs = 0;
    let turn = t0;
    const yieldToLoop = async () => {
      pauseMs = Math.max(pauseMs, performance.now() - turn);
      await new Promise<void>((res) => setImmediate(res));
      turn = performance.now();
    };
    // The capture's first turn runs now, at `seq`; what is committed while it goes on counts toward the next one.
    const capturing = opts.capture(yieldToLoop);
    sinceLast = 0;
    const payload = await capturing;
    pauseMs = Math.max(pauseMs, performance.now() - turn);
    const header: SnapshotHeader = {
      format: SNAPSHOT_FORMAT,
      v: SNAPSHOT_VERSION,
      seq,
      line_sha256: lineSha,
      created_at: opts.now().toISOString(),
      center_version: opts.centerVersion,
      settings: opts.settings,
      payload_bytes: payload.reduce((n, b) => n + b.length, 0),
    };
    const bytes = await writeSnapshotFile(opts.file, header, payload);
    writtenSeq = seq;
    const stats = { seq, bytes, pauseMs, totalMs: performance.now() - t0 };
    last = stats;
    opts.onWritten?.(stats);
    return stats;
  };

  const run = (): Promise<SnapshotStats | undefined> => {
    if (running) {
      again = true;
      return running;
    }
    running = take()
      .catch((err: Error) => {
        // The log is the truth: a failed snapshot only means a longer next start.
        opts.log.warn(`state snapshot not written: ${err.message}`);
        return undefined;
      })
      .finally(() => {
        running = undefined;
        if (again && !closed) {
          again = false;
          void run();
        }
      });
    return running;
  };

  const onCommitted = (n: number) => {
    sinceLast += n;
    if (!closed && opts.everyEntries > 0 && sinceLast >= opts.everyEntries && countTrigger === undefined) {
      // Not inside the commit: after it, when every projection has seen the batch.
      countTrigger = opts.timers.setTimeout(() => {
        countTrigger = undefined;
        void run();
      }, 0);
    }
  };

  return {
    projection: {
      replay: markReplayed,
      commit(batch) {
        if (batch.length === 0) return;
        mark(batch[batch.length - 1]!);
        onCommitted(batch.length);
      },
    },
    coveredBy(seq, lineSha256) {
      if (seq < lastSeq) return;
      lastSeq = seq;
      writtenSeq = seq;
      lastLineSha = lineSha256;
    },
    start() {
      if (opts.everyMs <= 0) return;
      const tick = () => {
        timer = opts.timers.setTimeout(() => {
          void run().finally(() => {
            if (!closed) tick();
          });
        }, opts.everyMs);
      };
      tick();
    },
    snapshot: run,
    async close() {
      closed = true;
      if (timer !== undefined) opts.timers.clearTimeout(timer);
      if (countTrigger !== undefined) opts.timers.clearTimeout(countTrigger);
      await running;
      await run();
    },
    get last() {
      return last;
    },
  };
}

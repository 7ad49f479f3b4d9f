/**
 * `vaultmesh logs tail`: the last N matching envelopes, then new ones as they are appended, like `tail -F`. The
 * files are pinned (held open) before the first pass and followed from where it ended by the journal module's
 * follower (lib/journal/follow.ts: inode tracking, rotation, truncation, fs.watch backed by a slow poll).
 */
import type { watch as fsWatch } from 'node:fs';
import type { Writable } from 'node:stream';
import { pinJournals } from '../../lib/journal/index.js';
import type { Envelope } from '../../protocol/envelope.js';
import { formatHuman } from './format.js';
import { journalsForFilter, matchesFilter, type LogFilter } from './filters.js';
import { assertLogDir, scanJournals, StopScan } from './journal-files.js';
import { createLineWriter } from './line-writer.js';

/** Bounded FIFO of the last `n` items: the memory of `tail -n` over a file of any size. */
export interface Ring<T> {
  push(item: T): void;
  items(): T[];
}

export function createRing<T>(n: number): Ring<T> {
  const slots: T[] = [];
  let next = 0;
  return {
    push(item) {
      if (n <= 0) return;
      if (slots.length < n) slots.push(item);
      else slots[next] = item;
      next = (next + 1) % n;
    },
    items() {
      return slots.length < n ? [...slots] : [...slots.slice(next), ...slots.slice(0, next)];
    },
  };
}

export interface TailOptions {
  dir: string;
  filter: LogFilter;
  /** How many matching envelopes to print before following. */
  lines: number;
  json: boolean;
  colour: boolean;
  skipCorrupt: boolean;
  out: Writable;
  warn: (message: string) => void;
  /** Aborting ends the follow loop cleanly (the CLI wires it to SIGINT/SIGTERM). */
  signal: AbortSignal;
  /** Fallback stat poll period; 1 s keeps CPU at ~0 and still catches changes watch misses. */
  pollMs?: number;
  watch?: typeof fsWatch;
}

const EMPTY = Buffer.alloc(0);

interface Pending {
  env: Envelope;
  bytes: Buffer;
}

export async function tailLogs(opts: TailOptions): Promise<void> {
  const { filter, signal } = opts;
  const journals = journalsForFilter(filter);
  const writer = createLineWriter(opts.out);
  const render = (env: Envelope, bytes: Buffer): string | Buffer => (opts.json ? bytes : formatHuman(env, { colour: opts.colour }));

  await assertLogDir(opts.dir);
  // Pin the files (open handles) before the first pass so following resumes on exactly the inodes that were read.
  const pinned = await pinJournals(opts.dir, journals);
  try {
    // Keep the envelope (human output is rendered only for the last N) or a copy of the bytes (--json): the
    // reader's chunk buffers are reused, the ring outlives them.
    const ring = createRing<Pending>(opts.lines);
    const first = await scanJournals({
      dir: opts.dir,
      files: pinned.files,
      skipCorrupt: opts.skipCorrupt,
      quietTornTails: true,
      warn: opts.warn,
      visit: (entry) => {
        if (signal.aborted) throw new StopScan(); // Ctrl-C during a long first pass.
        if (!matchesFilter(entry.envelope, filter)) return;
        ring.push({ env: entry.envelope, bytes: opts.json ? Buffer.from(entry.line.bytes) : EMPTY });
      },
    });
    pinned.resumeAt(first.ends);
    for (const p of ring.items()) await writer.line(render(p.env, p.bytes));
    await writer.flush();
    if (signal.aborted) return;
    await pinned.follow({
      skipCorrupt: opts.skipCorrupt,
      warn: opts.warn,
      signal,
      isDone: () => writer.closed,
      ...(opts.pollMs !== undefined ? { pollMs: opts.pollMs } : {}),
      ...(opts.watch ? { watch: opts.watch } : {}),
      onEntries: async (entries) => {
        for (const e of entries) if (matchesFilter(e.envelope, filter)) await writer.line(render(e.envelope, e.line));
        await writer.flush();
      },
    });
  } finally {
    await pinned.close();
  }
}

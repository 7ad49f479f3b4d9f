/**
 * Reading the journals of a log dir for the offline `logs` commands: one merged, seq-ordered pass (through the
 * journal module, lib/journal/) with the CLI's policy for corrupt lines (stop with file:line, or skip with a
 * warning) and torn tails (ignored with a warning).
 */
import { stat } from 'node:fs/promises';
import { listJournalFiles, mergeJournals, type JournalEntry, type JournalFile, type JournalName } from '../../lib/journal/index.js';
import { VaultMeshError } from '../../protocol/errors.js';
import { usageError } from './filters.js';

/** Fails with USAGE (exit 2) when the log dir is missing or not a directory. */
export async function assertLogDir(dir: string): Promise<void> {
  const hint = 'pass --dir <path> or set VAULTMESH_LOG_DIR to the command center log dir';
  try {
    const st = await stat(dir);
    if (!st.isDirectory()) throw usageError(`log dir ${dir} is not a directory`, hint, 'dir');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw usageError(`log dir ${dir} does not exist`, hint, 'dir');
    throw err;
  }
}

/** Thrown from a visitor to end a pass early (limit reached, reader gone); not an error. */
export class StopScan extends Error {
  constructor() {
    super('scan stopped');
    this.name = 'StopScan';
  }
}

export interface ScanOptions {
  dir: string;
  /** Only these journals (undefined: all). */
  journals?: ReadonlySet<JournalName>;
  /** Exactly these files, already listed by the caller (tail pins them before reading). */
  files?: JournalFile[];
  skipCorrupt: boolean;
  /** A torn last line is normal while a writer is mid-append: tail ignores it quietly and resumes there. */
  quietTornTails?: boolean;
  /** One-line warnings for stderr (skipped corrupt lines, torn tails). */
  warn: (message: string) => void;
  visit: (entry: JournalEntry) => void | Promise<void>;
  /** The visitor copies whatever it keeps of `entry.line.bytes`: read through two fixed buffers (constant memory). */
  reuseBuffers?: boolean;
  /** An entry's envelope parses its body (and id, author) only when the visitor reads it, during the visit. */
  lazyBodies?: boolean;
}

export interface ScanResult {
  files: JournalFile[];
  skippedCorrupt: number;
  tornTails: number;
  /** Per file path: byte offset after the last complete line read (where a follower resumes). */
  ends: Record<string, { offset: number; lineNo: number }>;
}

/**
 * One merged pass over the journals in seq order. A corrupt line fails the pass with code JOURNAL_CORRUPT and a
 * `file:line: reason` message unless `skipCorrupt`; a torn last line is never visited, only reported.
 */
export async function scanJournals(opts: ScanOptions): Promise<ScanResult> {
  await assertLogDir(opts.dir);
  const files = opts.files ?? (await listJournalFiles(opts.dir, opts.journals));
  let skippedCorrupt = 0;
  let firstCorrupt: string | undefined;
  let result;
  try {
    result = await mergeJournals(
      files.map((f) => f.path),
      {
        visit: opts.visit,
        reuseBuffers: opts.reuseBuffers === true,
        lazyBodies: opts.lazyBodies === true,
        onCorrupt: (bad) => {
          const where = `${bad.file}:${bad.line.lineNo}: ${bad.reason}`;
          if (!opts.skipCorrupt) {
            firstCorrupt = where;
            return 'stop';
          }
          skippedCorrupt++;
          opts.warn(`${where} (skipped)`);
          return 'skip';
        },
      },
    );
  } catch (err) {
    if (err instanceof StopScan) return { files, skippedCorrupt, tornTails: 0, ends: {} };
    const e = err as NodeJS.ErrnoException;
    if (e.code === 'EACCES' || e.code === 'EISDIR' || e.code === 'EIO') {
      throw new VaultMeshError('UNREADABLE', `cannot read ${e.path ?? opts.dir}: ${e.code}`, { status: 500, cause: err });
    }
    throw err;
  }
  if (result.stopped) {
    throw new VaultMeshError('JOURNAL_CORRUPT', firstCorrupt ?? 'corrupt journal line', {
      status: 500,
      details: [{ message: 'rerun with --skip-corrupt to report such lines and go on', hint: 'rerun with --skip-corrupt to report such lines and go on' }],
    });
  }
  for (const tail of opts.quietTornTails ? [] : result.tails) {
    opts.warn(`${tail.file}:${tail.line.lineNo}: torn last line ignored (${tail.line.bytes.length} bytes without a newline)`);
  }
  return { files, skippedCorrupt, tornTails: result.tails.length, ends: result.ends };
}

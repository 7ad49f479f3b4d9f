/**
 * Finding and reading the journals of a log dir for the offline `logs` commands: file discovery in one place
 * (so rotated segments are a one-line change), and one merged, seq-ordered pass with the CLI's policy for corrupt
 * lines (stop with file:line, or skip with a warning) and torn tails (ignored with a warning).
 */
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { mergeJournals, type JournalEntry } from '../../command-center/store/journal-reader.js';
import { JOURNAL_FILES, type JournalName } from '../../protocol/envelope.js';
import { VaultMeshError } from '../../protocol/errors.js';
import { usageError } from './filters.js';

export interface JournalFile {
  name: JournalName;
  path: string;
}

/**
 * Journals that may be split into segments `<base>-<segment>.jsonl` beside the active `<base>.jsonl`. Only
 * heartbeats are rotated today; add a name here when another journal is. (Not all: a stray `events-copy.jsonl`
 * would otherwise be merged and show up as duplicate seqs.)
 */
export const ROTATED_JOURNALS: ReadonlySet<JournalName> = new Set<JournalName>(['heartbeats']);

const BASES = Object.entries(JOURNAL_FILES).map(([name, file]) => ({ name: name as JournalName, base: file.slice(0, -'.jsonl'.length) }));

/** Which journal a file name in the log dir belongs to, or undefined for anything else (ROOT.txt, locks...). */
export function journalNameOf(fileName: string): JournalName | undefined {
  if (!fileName.endsWith('.jsonl')) return undefined;
  const stem = fileName.slice(0, -'.jsonl'.length);
  for (const { name, base } of BASES) {
    if (stem === base) return name;
    if (ROTATED_JOURNALS.has(name) && stem.startsWith(`${base}-`) && /^[A-Za-z0-9._-]+$/.test(stem.slice(base.length + 1))) return name;
  }
  return undefined;
}

/** The journal files present in `dir` (optionally only some journals), sorted by name for stable output. */
export async function listJournalFiles(dir: string, only?: ReadonlySet<JournalName>): Promise<JournalFile[]> {
  const names = await readdir(dir);
  const files: JournalFile[] = [];
  for (const fileName of names.sort()) {
    const name = journalNameOf(fileName);
    if (name !== undefined && (only === undefined || only.has(name))) files.push({ name, path: join(dir, fileName) });
  }
  return files;
}

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

/**
 * Start-up replay: visits every journal envelope in seq order and repairs only what is safe to repair.
 * - A torn final line (no '\n': the process died mid-write, so it was never acknowledged) is moved aside to
 *   `<file>.torn-<ts>` and the file is truncated to its last complete line. It is reported, never merged.
 * - A bad line anywhere else stops start-up naming file and line, unless `repair` is set: then the bad lines are
 *   moved to `<file>.quarantine-<ts>` and the file is rewritten without them.
 */
import { open, rename, stat, truncate, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { VaultMeshError } from '../../protocol/errors.js';
import { fsyncDirSync } from '../../lib/atomic-file.js';
import { journalPaths, LineSource, mergeJournals, seekJournal, type CorruptLine, type JournalEntry } from '../../lib/journal/index.js';
import type { ReplayReport } from './envelope-store.js';

export type { ReplayReport };

export interface ReplayOptions {
  dir: string;
  /** Journal files to read (default: the four active journals). Closed heartbeat segments are added by the caller. */
  files?: string[];
  visit: (entry: JournalEntry) => void;
  repair?: boolean;
  now?: () => Date;
  /** Visit only entries with a greater seq: each file is entered by binary search (seekJournal), not read from 0. */
  afterSeq?: number;
  /**
   * Read the files into two reused buffers (lib/journal LineSourceOptions) instead of a fresh 1 MiB chunk per read:
   * `entry.line.bytes` is then valid only during its visit, and a visitor that keeps a line copies it. What the
   * report keeps (torn tails, corrupt lines) is copied here.
   */
  reuseBuffers?: boolean;
}

const stamp = (d: Date) => d.toISOString().replace(/[:.]/g, '-');

export async function replayJournals(opts: ReplayOptions): Promise<ReplayReport> {
  const t0 = performance.now();
  const now = opts.now ?? (() => new Date());
  const bad: CorruptLine[] = [];
  let envelopes = 0;
  const files = opts.files ?? journalPaths(opts.dir);
  const afterSeq = opts.afterSeq ?? 0;
  // Torn tails are at the ends of the files, so a replay entering them part-way still finds them. Line numbers of
  // corrupt lines are unknown after a seek (0); --repair, which rewrites by line number, always replays in full.
  const fromOffsets: Record<string, { offset: number; lineNo: number }> = {};
  if (afterSeq > 0) {
    if (opts.repair) throw new Error('replayJournals: repair needs a full replay');
    for (const f of files) fromOffsets[f] = { offset: await seekJournal(f, (e) => e.seq > afterSeq), lineNo: 0 };
  }
  const reuseBuffers = opts.reuseBuffers === true;
  const result = await mergeJournals(files, {
    fromOffsets,
    reuseBuffers,
    visit: (entry) => {
      envelopes++;
      opts.visit(entry);
    },
    onCorrupt: (line) => {
      bad.push(reuseBuffers ? { ...line, line: { ...line.line, bytes: Buffer.from(line.line.bytes) } } : line);
      return opts.repair ? 'skip' : 'stop';
    },
  });
  if (result.stopped) {
    const first = bad[0]!;
    throw new VaultMeshError(
      'JOURNAL_CORRUPT',
      `${first.file}:${first.line.lineNo}: ${first.reason}. Inspect the line; start with --repair to move it to a quarantine file and continue.`,
      { status: 500 },
    );
  }
  const report: ReplayReport = { lastSeq: Math.max(result.lastSeq, afterSeq), envelopes, tornTails: [], quarantined: [], durationMs: 0, afterSeq };

  for (const { file, line } of result.tails) {
    const movedTo = `${file}.torn-${stamp(now())}`;
    await writeFile(movedTo, line.bytes, { mode: 0o600 });
    await truncate(file, line.offset);
    report.tornTails.push({ file, movedTo, bytes: line.bytes.length });
  }

  const badByFile = new Map<string, CorruptLine[]>();
  for (const b of bad) badByFile.set(b.file, [...(badByFile.get(b.file) ?? []), b]);
  for (const [file, lines] of badByFile) {
    const movedTo = `${file}.quarantine-${stamp(now())}`;
    await rewriteWithout(file, new Set(lines.map((l) => l.line.lineNo)), movedTo);
    for (const l of lines) report.quarantined.push({ file, line: l.line.lineNo, reason: l.reason, movedTo });
  }
  if (report.tornTails.length || report.quarantined.length) fsyncDirSync(opts.dir);
  report.durationMs = performance.now() - t0;
  return report;
}

/**
 * Streams `file` into a temp copy without the given line numbers, saves those lines aside, then renames. The copy
 * takes the file's mode (an operator may have opened it to a group), set explicitly since the umask could mask it.
 */
async function rewriteWithout(file: string, drop: Set<number>, quarantineFile: string): Promise<void> {
  const tmp = join(file, '..', `.${basename(file)}.repair-${process.pid}`);
  const fileMode = (await stat(file)).mode & 0o7777;
  const out = await open(tmp, 'w', 0o600);
  const aside = await open(quarantineFile, 'w', 0o600);
  try {
    await out.chmod(fileMode);
    const src = new LineSource(file);
    for (let batch = await src.nextBatch(); batch; batch = await src.nextBatch()) {
      for (const l of batch) await (drop.has(l.lineNo) ? aside : out).write(Buffer.concat([l.bytes, Buffer.from('\n')]));
    }
    // A torn tail was already moved aside before this runs, so nothing is left in src.tail.
    await out.datasync();
    await aside.datasync();
  } finally {
    await out.close();
    await aside.close();
  }
  await rename(tmp, file);
}

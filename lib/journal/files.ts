/**
 * The names of a log dir's journal files: the four active journals (`protocol/envelope.ts` JOURNAL_FILES), the
 * closed heartbeat segments `heartbeats-<lastSeq>.jsonl` (12 digits, so names sort by seq), and which journal a file
 * name belongs to. One place, so the center (rotation, replay) and the CLI (logs, tail) agree on what a journal is.
 */
import { readdirSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { JOURNAL_FILES, type JournalName } from '../../protocol/envelope-shape.js';

export { JOURNAL_FILES, type JournalName };

const SEGMENT_RE = /^heartbeats-(\d{12})\.jsonl$/;

/** The closed segment of heartbeats.jsonl whose last line has seq `lastSeq`. */
export function segmentName(lastSeq: number): string {
  return `heartbeats-${String(lastSeq).padStart(12, '0')}.jsonl`;
}

/** The last seq of a closed heartbeat segment, from its file name; undefined for any other name. */
export function segmentLastSeq(fileName: string): number | undefined {
  const m = SEGMENT_RE.exec(fileName);
  return m ? Number(m[1]) : undefined;
}

export interface Segment {
  path: string;
  lastSeq: number;
}

/** Closed heartbeat segments in `dir`, oldest first. */
export function listSegments(dir: string): Segment[] {
  const out: Segment[] = [];
  for (const name of readdirSync(dir)) {
    const lastSeq = segmentLastSeq(name);
    if (lastSeq !== undefined) out.push({ path: join(dir, name), lastSeq });
  }
  return out.sort((a, b) => a.lastSeq - b.lastSeq);
}

/** The four active journal files of `dir`. */
export function journalPaths(dir: string): string[] {
  return Object.values(JOURNAL_FILES).map((f) => join(dir, f));
}

const BY_FILE = new Map(Object.entries(JOURNAL_FILES).map(([name, file]) => [file as string, name as JournalName]));

/**
 * Which journal a file name in the log dir belongs to: an active journal or a closed heartbeat segment. Anything
 * else (ROOT.txt, `.torn-`/`.quarantine-` files, a stray `events-copy.jsonl`) is not a journal, so it is never
 * merged (it would show up as duplicate seqs).
 */
export function journalNameOf(fileName: string): JournalName | undefined {
  return BY_FILE.get(fileName) ?? (segmentLastSeq(fileName) !== undefined ? 'heartbeats' : undefined);
}

export interface JournalFile {
  name: JournalName;
  path: string;
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

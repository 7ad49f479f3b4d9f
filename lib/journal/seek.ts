/**
 * Binary search in a seq-ordered JSONL journal: the byte offset of the first line satisfying a monotone predicate
 * (e.g. `seq > 500000`), in O(log size) small positioned reads, without reading the file front to back.
 */
import { open, type FileHandle } from 'node:fs/promises';
import { parseJournalLine } from './reader.js';
import type { Envelope } from '../../protocol/envelope.js';

const PROBE = 4096;

/**
 * The first line starting at or after `pos`: its start and, when it is complete, its bytes (a torn tail, still
 * being written, has none). Undefined when no line starts there before the end of the file.
 */
async function lineFrom(fh: FileHandle, pos: number, size: number): Promise<{ start: number; bytes?: Buffer } | undefined> {
  let start = pos;
  if (pos > 0) {
    // Find the newline that ends the line containing pos-1; the next line starts after it.
    let at = pos - 1;
    for (;;) {
      if (at >= size) return undefined;
      const len = Math.min(PROBE, size - at);
      const buf = Buffer.allocUnsafe(len);
      const { bytesRead } = await fh.read(buf, 0, len, at);
      const nl = buf.subarray(0, bytesRead).indexOf(10);
      if (nl !== -1) {
        start = at + nl + 1;
        break;
      }
      if (bytesRead === 0) return undefined;
      at += bytesRead;
    }
  }
  if (start >= size) return undefined;
  const parts: Buffer[] = [];
  let at = start;
  while (at < size) {
    const len = Math.min(PROBE, size - at);
    const buf = Buffer.allocUnsafe(len);
    const { bytesRead } = await fh.read(buf, 0, len, at);
    if (bytesRead === 0) break;
    const chunk = buf.subarray(0, bytesRead);
    const nl = chunk.indexOf(10);
    if (nl !== -1) {
      parts.push(chunk.subarray(0, nl));
      return { start, bytes: Buffer.concat(parts) };
    }
    parts.push(chunk);
    at += bytesRead;
  }
  return { start }; // a torn tail is not a line
}

/**
 * Offset of the first line whose envelope satisfies `pred` (false…false, true…true in file order), or the end of
 * the last complete line when none does (0 when the file does not exist). A line that does not parse counts as "not yet" so a damaged
 * line never makes the search skip valid data after it; the reader that follows reports it.
 */
export async function seekJournal(file: string, pred: (env: Envelope) => boolean): Promise<number> {
  let fh: FileHandle;
  try {
    fh = await open(file, 'r');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 0;
    throw err;
  }
  try {
    const size = (await fh.stat()).size;
    const test = async (x: number): Promise<{ ok: boolean; start: number }> => {
      const line = await lineFrom(fh, x, size);
      if (!line) return { ok: true, start: size };
      if (!line.bytes) return { ok: true, start: line.start };
      const env = parseJournalLine(line.bytes);
      return { ok: typeof env !== 'string' && pred(env), start: line.start };
    };
    // Search over byte positions x for the smallest x whose next line start passes. Every line start s before the
    // answer has test(s) false (s is its own next line start), so the line found from that x is the first passing one.
    let lo = 0;
    let hi = size;
    while (lo < hi) {
      const mid = Math.floor((lo + hi) / 2);
      if ((await test(mid)).ok) hi = mid;
      else lo = mid + 1;
    }
    return (await test(lo)).start;
  } finally {
    await fh.close();
  }
}

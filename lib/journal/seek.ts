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
 * Once the search has narrowed to this many bytes, the lines left are read in one go and tested in order: the
 * last dozen halvings of a search down to the byte cost two positioned reads each (≈ 28 probes in a 150 MB file),
 * and each is an asynchronous round trip through the thread pool, while a few dozen lines parse in well under a
 * millisecond.
 */
const SCAN_BYTES = 64 << 10;

/**
 * Offset of the first line whose envelope satisfies `pred` (false…false, true…true in file order), or the end of
 * the last complete line when none does (0 when the file does not exist). A line that does not parse counts as "not yet" so a damaged
 * line never makes the search skip valid data after it; the reader that follows reports it. `scanBytes` (tests):
 * where the binary search hands over to reading the remaining lines in order.
 */
export async function seekJournal(file: string, pred: (env: Envelope) => boolean, scanBytes = SCAN_BYTES): Promise<number> {
  let fh: FileHandle;
  try {
    fh = await open(file, 'r');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 0;
    throw err;
  }
  try {
    const size = (await fh.stat()).size;
    const passes = (bytes: Buffer) => {
      const env = parseJournalLine(bytes);
      return typeof env !== 'string' && pred(env);
    };
    const test = async (x: number): Promise<{ ok: boolean; start: number }> => {
      const line = await lineFrom(fh, x, size);
      if (!line) return { ok: true, start: size };
      if (!line.bytes) return { ok: true, start: line.start };
      return { ok: passes(line.bytes), start: line.start };
    };
    // Search over byte positions x for the smallest x whose next line start passes. Every line start s before the
    // answer has test(s) false (s is its own next line start), so the line found from that x is the first passing one.
    let lo = 0;
    let hi = size;
    while (hi - lo > scanBytes) {
      const mid = Math.floor((lo + hi) / 2);
      if ((await test(mid)).ok) hi = mid;
      else lo = mid + 1;
    }
    // Every x < lo fails, and the line found from hi passes (or is the end, or the torn tail): the answer is the
    // first passing line starting in [lo, that line's start), else that line's start.
    const bound = (await test(hi)).start;
    if (bound <= lo) return bound;
    const from = Math.max(0, lo - 1); // from the byte before lo: a line starting exactly at lo is found too
    const window = Buffer.allocUnsafe(bound - from);
    for (let done = 0; done < window.length; ) {
      const { bytesRead } = await fh.read(window, done, window.length - done, from + done);
      if (bytesRead === 0) return (await test(lo)).start; // the file shrank under us: probe as before
      done += bytesRead;
    }
    let start = lo === 0 ? 0 : window.indexOf(10) + 1;
    if (start === 0 && lo > 0) return bound; // no line starts before bound
    while (start < window.length) {
      const nl = window.indexOf(10, start);
      // A line without its newline runs to the end of the file: the torn tail, which counts as found (as in test).
      if (nl === -1) return from + start;
      if (passes(window.subarray(start, nl))) return from + start;
      start = nl + 1;
    }
    return bound;
  } finally {
    await fh.close();
  }
}

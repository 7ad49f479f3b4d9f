/**
 * Reads a journal from its end towards its start, one complete line at a time, in constant memory: the newest
 * entries of a log that may be gigabytes long, for newest-first history pages. Only the bytes present when the read
 * started are read; a last line without its newline (a write in progress or torn) is not a line yet and is skipped.
 */
import { open } from 'node:fs/promises';

const CHUNK = 64 * 1024;

/** Calls `visit` with each line (without its newline), newest first, until it returns false or the file starts. */
export async function readLinesBackward(file: string, visit: (line: Buffer) => boolean | void): Promise<void> {
  let fh;
  try {
    fh = await open(file, 'r');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw err;
  }
  try {
    let end = (await fh.stat()).size;
    if (end === 0) return;
    // Drop a trailing partial line: only bytes up to the last newline are complete lines.
    let carry: Buffer = Buffer.alloc(0);
    let sawNewline = false;
    while (end > 0) {
      const start = Math.max(0, end - CHUNK);
      const buf = Buffer.alloc(end - start);
      await fh.read(buf, 0, buf.length, start);
      let data = carry.length ? Buffer.concat([buf, carry]) : buf;
      let stop = data.length;
      if (!sawNewline) {
        const last = data.lastIndexOf(0x0a);
        if (last < 0) {
          carry = data;
          end = start;
          continue;
        }
        sawNewline = true;
        data = data.subarray(0, last + 1);
        stop = data.length;
      }
      // data ends with '\n' (or with the start of the line carried from the previous chunk): walk back line by line.
      let lineEnd = data[stop - 1] === 0x0a ? stop - 1 : stop;
      for (;;) {
        const nl = data.lastIndexOf(0x0a, lineEnd - 1);
        if (nl < 0) break;
        if (lineEnd > nl + 1 && visit(data.subarray(nl + 1, lineEnd)) === false) return;
        lineEnd = nl;
      }
      carry = Buffer.from(data.subarray(0, lineEnd));
      end = start;
    }
    if (sawNewline && carry.length) visit(carry);
  } finally {
    await fh.close();
  }
}

/**
 * Streaming reader for JSONL journals: fixed-size chunks split on '\n' with Buffer.indexOf (faster than
 * readline, constant memory on multi-GB files), and a k-way merge of several journals in `seq` order.
 * Used by the center's JSONL store (replay, tail, event history) and by the offline CLI (logs, ledger).
 */
import { open, type FileHandle } from 'node:fs/promises';
import { looksLikeEnvelope } from '../../protocol/envelope-shape.js';
import type { Envelope } from '../../protocol/envelope.js';
import { scanEnvelopeLine } from './envelope-scan.js';

const CHUNK = 1 << 20;
/** Reused buffers are all a pass over the journals keeps; 64 KiB reads cost no measurable time against 1 MiB. */
const REUSED_CHUNK = 64 * 1024;

export interface RawLine {
  /** Line bytes without the trailing newline. */
  bytes: Buffer;
  /** 1-based line number. */
  lineNo: number;
  /** Byte offset of the line start. */
  offset: number;
}

export interface LineSourceOptions {
  /**
   * Read into two fixed buffers in turn instead of a fresh one per read: the lines of a batch are then valid only
   * until the next `nextBatch()` call, a line of `takeLine()` until the `fill()` after the next one (copy what you
   * keep). Memory stays at two chunks however large the file,
   * where fresh buffers pile up as external memory until the next GC (tens of MB on a multi-GB scan).
   */
  reuseBuffers?: boolean;
}

/**
 * Reads complete lines of a file, in batches (`nextBatch`) or one at a time (`takeLine`, and `fill` when it has none
 * left; the merge reads this way). A final segment without '\n' is a torn tail: it is not returned as a
 * line but reported through `tail` once reading is done.
 */
export class LineSource {
  readonly path: string;
  private fh: FileHandle | undefined;
  private buf = Buffer.alloc(0);
  private position = 0;
  private lineNo = 0;
  private bufStart = 0;
  eof = false;
  /** Set at end of file when the last bytes have no newline. */
  tail: RawLine | undefined;

  /** The two buffers of `reuseBuffers` mode, used in turn. */
  private blocks: [Buffer, Buffer] | undefined;
  private turn = 0;
  /** Reused mode: the bytes read into the current buffer, and where the next line starts in them. */
  private data: Buffer = Buffer.alloc(0);
  private scan = 0;
  /** Fresh mode: the lines of the last batch not taken yet by `takeLine`. */
  private pending: RawLine[] = [];
  private pendingPos = 0;

  constructor(path: string, fromOffset = 0, firstLineNo = 1, opts: LineSourceOptions = {}) {
    this.path = path;
    this.position = fromOffset;
    this.bufStart = fromOffset;
    this.lineNo = firstLineNo - 1;
    if (opts.reuseBuffers) this.blocks = [Buffer.allocUnsafe(REUSED_CHUNK), Buffer.allocUnsafe(REUSED_CHUNK)];
  }

  async open(): Promise<void> {
    this.fh = await open(this.path, 'r');
  }

  /** Next batch of complete lines, or undefined at end of file. */
  async nextBatch(): Promise<RawLine[] | undefined> {
    if (!this.blocks) {
      // Lines handed out one by one and then a batch: the batch starts with what `takeLine` left.
      if (this.pendingPos < this.pending.length) {
        const rest = this.pending.slice(this.pendingPos);
        this.pending = [];
        this.pendingPos = 0;
        return rest;
      }
      return this.nextFreshBatch();
    }
    for (;;) {
      const lines: RawLine[] = [];
      for (let l = this.takeLine(); l; l = this.takeLine()) lines.push(l);
      if (lines.length) return lines;
      if (!(await this.fill())) return undefined;
    }
  }

  /**
   * The next complete line of what has been read, or undefined when `fill()` must read more. With reused buffers
   * this makes one line object at a time, where a batch keeps a few thousand of them (and their Buffer views)
   * alive across the young-generation collections of the pass, which then promote them: the old generation of a
   * multi-GB scan grew by tens of MB between full collections.
   */
  takeLine(): RawLine | undefined {
    if (!this.blocks) return this.pendingPos < this.pending.length ? this.pending[this.pendingPos++] : undefined;
    const data = this.data;
    const start = this.scan;
    const nl = data.indexOf(10, start);
    if (nl === -1) return undefined;
    this.scan = nl + 1;
    return { bytes: data.subarray(start, nl), lineNo: ++this.lineNo, offset: this.bufStart + start };
  }

  /**
   * Reads more of the file for `takeLine`; false at end of file (the torn tail, if any, is then in `tail`). With
   * reused buffers, the line handed out last stays valid until this returns.
   */
  async fill(): Promise<boolean> {
    if (this.eof) return false;
    if (!this.fh) await this.open();
    if (!this.blocks) {
      const batch = await this.nextFreshBatch();
      this.pending = batch ?? [];
      this.pendingPos = 0;
      return batch !== undefined;
    }
    const blocks = this.blocks;
    // The unfinished line at the end of this buffer starts the other one.
    const prev = this.data;
    const carryFrom = this.scan;
    const carry = prev.length - carryFrom;
    this.turn ^= 1;
    let block = blocks[this.turn]!;
    if (carry >= block.length) {
      // One line longer than a chunk: each buffer grows to fit it when its turn comes (the other one is in use).
      let size = block.length * 2;
      while (size <= carry) size *= 2;
      block = Buffer.allocUnsafe(size);
      blocks[this.turn] = block;
    }
    if (carry) prev.copy(block, 0, carryFrom, carryFrom + carry);
    this.bufStart += carryFrom;
    this.scan = 0;
    const { bytesRead } = await this.fh!.read(block, carry, block.length - carry, this.position);
    if (bytesRead === 0) {
      this.eof = true;
      this.data = block.subarray(0, 0);
      if (carry > 0) this.tail = { bytes: Buffer.from(block.subarray(0, carry)), lineNo: this.lineNo + 1, offset: this.bufStart };
      await this.close();
      return false;
    }
    this.position += bytesRead;
    this.data = block.subarray(0, carry + bytesRead);
    return true;
  }

  private async nextFreshBatch(): Promise<RawLine[] | undefined> {
    if (this.eof) return undefined;
    if (!this.fh) await this.open();
    for (;;) {
      const chunk = Buffer.allocUnsafe(CHUNK);
      const { bytesRead } = await this.fh!.read(chunk, 0, CHUNK, this.position);
      if (bytesRead === 0) {
        this.eof = true;
        if (this.buf.length > 0) this.tail = { bytes: Buffer.from(this.buf), lineNo: this.lineNo + 1, offset: this.bufStart };
        await this.close();
        return undefined;
      }
      this.position += bytesRead;
      const data = this.buf.length ? Buffer.concat([this.buf, chunk.subarray(0, bytesRead)]) : chunk.subarray(0, bytesRead);
      const { lines, start } = this.splitLines(data);
      this.bufStart += start;
      this.buf = Buffer.from(data.subarray(start));
      if (lines.length) return lines;
    }
  }

  /** The complete lines of `data` (numbered and placed from where the last batch ended) and where the rest starts. */
  private splitLines(data: Buffer): { lines: RawLine[]; start: number } {
    const lines: RawLine[] = [];
    let start = 0;
    for (let nl = data.indexOf(10, start); nl !== -1; nl = data.indexOf(10, start)) {
      lines.push({ bytes: data.subarray(start, nl), lineNo: ++this.lineNo, offset: this.bufStart + start });
      start = nl + 1;
    }
    return { lines, start };
  }

  async close(): Promise<void> {
    const fh = this.fh;
    this.fh = undefined;
    await fh?.close();
  }
}

export interface JournalEntry {
  envelope: Envelope;
  file: string;
  line: RawLine;
}

export interface CorruptLine {
  file: string;
  line: RawLine;
  reason: string;
}

export function parseJournalLine(bytes: Buffer): Envelope | string {
  let value: unknown;
  try {
    value = JSON.parse(bytes.toString('utf8'));
  } catch (err) {
    return `not JSON (${(err as Error).message})`;
  }
  return looksLikeEnvelope(value) ? value : 'not a valid envelope';
}

export interface MergeOptions {
  /** Called for every valid entry in global seq order. May return a promise (backpressure). */
  visit: (entry: JournalEntry) => void | Promise<void>;
  /** Called for a line that is not a valid envelope or breaks seq order; return 'skip' to go on, 'stop' to end. */
  onCorrupt?: (bad: CorruptLine) => 'skip' | 'stop';
  /** Byte offsets to start at per file (snapshot resume). */
  fromOffsets?: Record<string, { offset: number; lineNo: number }>;
  /** LineSourceOptions.reuseBuffers for every file: an entry's `line.bytes` is valid only during its visit. */
  reuseBuffers?: boolean;
  /**
   * Read each line's `seq`, `kind`, `node_id` and `ts` from its bytes and parse the rest only when the visitor
   * reads it (envelope-scan.ts), during the visit. Every line is still checked to be a valid JSON envelope.
   */
  lazyBodies?: boolean;
}

export interface MergeResult {
  /** Torn tails found at the end of files (not visited). */
  tails: Array<{ file: string; line: RawLine }>;
  stopped: boolean;
  lastSeq: number;
  /** Per file: where reading ended (byte offset after the last complete line) and its line count. */
  ends: Record<string, { offset: number; lineNo: number }>;
}

class Cursor {
  head: JournalEntry | undefined;
  lastSeq = 0;
  endOffset: number;
  endLineNo: number;
  constructor(readonly file: string, readonly source: LineSource, start: { offset: number; lineNo: number }) {
    this.endOffset = start.offset;
    this.endLineNo = start.lineNo - 1;
  }
}

/**
 * Visits every envelope of `files` in ascending seq. Each file must itself be in seq order; a line that is not a
 * valid envelope, or whose seq does not increase within its file, goes to `onCorrupt` (default: stop).
 */
export async function mergeJournals(files: string[], opts: MergeOptions): Promise<MergeResult> {
  const onCorrupt = opts.onCorrupt ?? (() => 'stop' as const);
  const lazy = opts.lazyBodies === true;
  const cursors: Cursor[] = [];
  for (const file of files) {
    const start = opts.fromOffsets?.[file] ?? { offset: 0, lineNo: 1 };
    const source = new LineSource(file, start.offset, start.lineNo, { reuseBuffers: opts.reuseBuffers === true });
    try {
      await source.open();
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue;
      throw err;
    }
    cursors.push(new Cursor(file, source, start));
  }
  const result: MergeResult = { tails: [], stopped: false, lastSeq: 0, ends: {} };

  // Advances a cursor to its next valid entry; false when the merge must stop.
  const advance = async (c: Cursor): Promise<boolean> => {
    c.head = undefined;
    for (;;) {
      const line = c.source.takeLine();
      if (!line) {
        if (await c.source.fill()) continue;
        if (c.source.tail) result.tails.push({ file: c.file, line: c.source.tail });
        return true;
      }
      const parsed = (lazy && scanEnvelopeLine(line.bytes)) || parseJournalLine(line.bytes);
      let reason: string | undefined;
      if (typeof parsed === 'string') reason = parsed;
      else if (parsed.seq <= c.lastSeq) reason = `seq ${parsed.seq} does not increase (previous ${c.lastSeq})`;
      if (reason !== undefined) {
        if (onCorrupt({ file: c.file, line, reason }) === 'stop') return false;
        c.endOffset = line.offset + line.bytes.length + 1;
        c.endLineNo = line.lineNo;
        continue;
      }
      const env = parsed as Envelope;
      c.lastSeq = env.seq;
      c.head = { envelope: env, file: c.file, line };
      return true;
    }
  };

  try {
    for (const c of cursors) if (!(await advance(c))) return { ...result, stopped: true };
    for (;;) {
      let min: Cursor | undefined;
      for (const c of cursors) if (c.head && (!min || c.head.envelope.seq < min.head!.envelope.seq)) min = c;
      if (!min) break;
      const entry = min.head!;
      if (entry.envelope.seq <= result.lastSeq) {
        // The same seq in two files: the journals were edited or mixed up.
        if (onCorrupt({ file: entry.file, line: entry.line, reason: `seq ${entry.envelope.seq} already used in another journal` }) === 'stop') {
          return { ...result, stopped: true };
        }
      } else {
        result.lastSeq = entry.envelope.seq;
        const r = opts.visit(entry);
        if (r) await r;
      }
      min.endOffset = entry.line.offset + entry.line.bytes.length + 1;
      min.endLineNo = entry.line.lineNo;
      if (!(await advance(min))) return { ...result, stopped: true };
    }
    for (const c of cursors) result.ends[c.file] = { offset: c.endOffset, lineNo: c.endLineNo + 1 };
    return result;
  } finally {
    for (const c of cursors) await c.source.close();
  }
}

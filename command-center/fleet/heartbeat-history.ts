/**
 * Bounded per-node heartbeat history as a ring of numbers in one Float64Array: 10,000 nodes × 120 samples stay
 * at ≈ 58 MB instead of a million small objects.
 */
export const HISTORY_FIELDS = ['t', 'load1', 'mem_used', 'mem_total', 'disk_used', 'disk_total'] as const;
export type HistorySample = Record<(typeof HISTORY_FIELDS)[number], number>;
const W = HISTORY_FIELDS.length;

export class HeartbeatHistory {
  private readonly data: Float64Array;
  private start = 0;
  private count = 0;
  /** A snapshot capture that has not copied this history yet (see HistoryCapture); it does before the next push. */
  private capture: HistoryCapture | undefined;
  private captureIndex = 0;

  constructor(readonly capacity = 120) {
    this.data = new Float64Array(capacity * W);
  }

  get length(): number {
    return this.count;
  }

  push(s: HistorySample): void {
    if (this.capture) this.capture.take(this);
    const slot = (this.start + this.count) % this.capacity;
    if (this.count < this.capacity) this.count++;
    else this.start = (this.start + 1) % this.capacity;
    const o = slot * W;
    this.data[o] = s.t;
    this.data[o + 1] = s.load1;
    this.data[o + 2] = s.mem_used;
    this.data[o + 3] = s.mem_total;
    this.data[o + 4] = s.disk_used;
    this.data[o + 5] = s.disk_total;
  }

  /** Samples held per history (6 numbers each): the stride of a packed block. */
  static readonly FIELDS = W;

  /**
   * Histories packed into one block for a state snapshot: each takes `capacity × FIELDS` numbers at `i × stride`,
   * with its ring position. One typed array serialises and reads back as a single copy.
   */
  static pack(histories: readonly HeartbeatHistory[], capacity: number): { data: Float64Array; start: Uint32Array; count: Uint32Array } {
    const stride = capacity * W;
    const data = new Float64Array(histories.length * stride);
    const start = new Uint32Array(histories.length);
    const count = new Uint32Array(histories.length);
    const block = { data, start, count };
    histories.forEach((h, i) => {
      if (h.capacity !== capacity) throw new Error(`heartbeat history of capacity ${h.capacity}, not ${capacity}`);
      h.packInto(block, i);
    });
    return block;
  }

  /**
   * Starts packing `histories` as they are now, without copying them now: a state snapshot must hold each one as of
   * its seq, but copying 10,000 histories (≈ 58 MB) in one go held the event loop for hundreds of ms. The block is
   * filled by `step` in slices, and a history pushed to before its turn is copied first (copy on write).
   */
  static capture(histories: readonly HeartbeatHistory[], capacity: number): HistoryCapture {
    return new HistoryCapture(histories, capacity);
  }

  /** History `i` of a packed block, as a view on it (no copy): the restored histories share one buffer. */
  static unpack(block: { data: Float64Array; start: Uint32Array; count: Uint32Array }, i: number, capacity: number): HeartbeatHistory {
    const stride = capacity * W;
    const h = Object.create(HeartbeatHistory.prototype) as HeartbeatHistory;
    const start = block.start[i]!;
    const count = block.count[i]!;
    if ((i + 1) * stride > block.data.length || start >= capacity || count > capacity) throw new Error('snapshot: malformed heartbeat history');
    Object.assign(h, { capacity, data: block.data.subarray(i * stride, (i + 1) * stride), start, count });
    return h;
  }

  /** For HistoryCapture: which capture still has to copy this history, and at which index. */
  heldFor(capture: HistoryCapture | undefined, index = 0): void {
    this.capture = capture;
    this.captureIndex = index;
  }
  get heldBy(): { capture: HistoryCapture; index: number } | undefined {
    return this.capture ? { capture: this.capture, index: this.captureIndex } : undefined;
  }
  /** Copies this ring into history slot `i` of a packed block (its samples at slot `at` of `data`). */
  packInto(block: { data: Float64Array; start: Uint32Array; count: Uint32Array }, i: number, at = i): void {
    block.data.set(this.data, at * this.capacity * W);
    block.start[i] = this.start;
    block.count[i] = this.count;
  }

  /** Oldest first. */
  samples(): HistorySample[] {
    const out: HistorySample[] = [];
    for (let i = 0; i < this.count; i++) {
      const o = ((this.start + i) % this.capacity) * W;
      const d = this.data;
      out.push({ t: d[o]!, load1: d[o + 1]!, mem_used: d[o + 2]!, mem_total: d[o + 3]!, disk_used: d[o + 4]!, disk_total: d[o + 5]! });
    }
    return out;
  }
}

/** Histories per chunk of a capture's sample block. */
const CHUNK = 1000;

/**
 * A packing of many histories in progress (HeartbeatHistory.capture): the block `pack` makes, filled lazily, in
 * chunks of CHUNK histories allocated when first written. One 58 MB allocation in the capture's first turn made V8
 * collect garbage there ("external memory pressure"), inside the pause the slicing is meant to avoid.
 */
export class HistoryCapture {
  readonly chunks: Array<Float64Array | undefined>;
  readonly start: Uint32Array;
  readonly count: Uint32Array;
  private next = 0;

  constructor(
    private readonly histories: readonly HeartbeatHistory[],
    readonly capacity: number,
  ) {
    this.chunks = new Array(Math.ceil(histories.length / CHUNK));
    this.start = new Uint32Array(histories.length);
    this.count = new Uint32Array(histories.length);
    histories.forEach((h, i) => {
      if (h.capacity !== capacity) throw new Error(`heartbeat history of capacity ${h.capacity}, not ${capacity}`);
      // A history still held by another capture (one given up on an error) is copied into that one first.
      h.heldBy?.capture.take(h);
      h.heldFor(this, i);
    });
  }

  private chunk(c: number): Float64Array {
    return (this.chunks[c] ??= new Float64Array(Math.min(CHUNK, this.histories.length - c * CHUNK) * this.capacity * W));
  }

  /** Copies history `h` if this capture still holds it (called by the history before it changes, or by `step`). */
  take(h: HeartbeatHistory): void {
    const held = h.heldBy;
    if (held?.capture !== this) return;
    const c = Math.floor(held.index / CHUNK);
    h.packInto({ data: this.chunk(c), start: this.start, count: this.count }, held.index, held.index - c * CHUNK);
    h.heldFor(undefined);
  }

  /** Copies up to `n` more histories; true once every one is in the block. */
  step(n: number): boolean {
    const end = Math.min(this.histories.length, this.next + n);
    for (; this.next < end; this.next++) this.take(this.histories[this.next]!);
    return this.next >= this.histories.length;
  }

  /** Copies the rest at once (also how a capture that is given up lets go of its histories); the block in chunks. */
  finish(): { chunks: Float64Array[]; start: Uint32Array; count: Uint32Array } {
    this.step(Infinity);
    const chunks = Array.from({ length: this.chunks.length }, (_, c) => this.chunk(c));
    return { chunks, start: this.start, count: this.count };
  }
}

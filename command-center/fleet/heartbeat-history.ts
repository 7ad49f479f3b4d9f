/**
 * Bounded per-node heartbeat history as a ring of numbers in one Float64Array: 10,000 nodes × 120 samples stay
 * at ≈ 58 MB instead of a million small objects, and a history holding fewer samples takes room for about as many
 * (the ring doubles as it fills, up to its capacity).
 */
export const HISTORY_FIELDS = ['t', 'load1', 'mem_used', 'mem_total', 'disk_used', 'disk_total'] as const;
export type HistorySample = Record<(typeof HISTORY_FIELDS)[number], number>;
const W = HISTORY_FIELDS.length;
/** Room a new history starts with (it doubles as samples come, up to its capacity). */
const INITIAL_SLOTS = 16;

export class HeartbeatHistory {
  /** The ring: `slots` samples of W numbers; it grows (up to `capacity`) as samples come, see `push`. */
  private data: Float64Array;
  private slots: number;
  private start = 0;
  private count = 0;
  /** A snapshot capture that has not copied this history yet (see HistoryCapture); it does before the next push. */
  private capture: HistoryCapture | undefined;
  private captureIndex = 0;

  constructor(readonly capacity = 120) {
    this.slots = Math.min(capacity, INITIAL_SLOTS);
    this.data = new Float64Array(this.slots * W);
  }

  get length(): number {
    return this.count;
  }

  push(s: HistorySample): void {
    if (this.capture) this.capture.take(this);
    // Room grows by doubling up to the capacity: a node's history costs what it holds (a fleet that started an hour
    // ago holds 120 samples per node at most, but one restarted or just enrolled holds a few).
    if (this.count === this.slots && this.slots < this.capacity) this.grow(Math.min(this.capacity, Math.max(INITIAL_SLOTS, this.slots * 2)));
    const slot = (this.start + this.count) % this.slots;
    if (this.count < this.slots) this.count++;
    else this.start = (this.start + 1) % this.slots;
    const o = slot * W;
    this.data[o] = s.t;
    this.data[o + 1] = s.load1;
    this.data[o + 2] = s.mem_used;
    this.data[o + 3] = s.mem_total;
    this.data[o + 4] = s.disk_used;
    this.data[o + 5] = s.disk_total;
  }

  /** A larger ring of its own (also how a history restored as a view on a snapshot's block leaves that block). */
  private grow(slots: number): void {
    const data = new Float64Array(slots * W);
    this.copyOldestFirst(data, 0);
    this.data = data;
    this.slots = slots;
    this.start = 0;
  }

  /** Writes the `count` samples, oldest first, into `out` at sample `at`. */
  private copyOldestFirst(out: Float64Array, at: number): void {
    const head = Math.min(this.count, this.slots - this.start);
    out.set(this.data.subarray(this.start * W, (this.start + head) * W), at * W);
    if (head < this.count) out.set(this.data.subarray(0, (this.count - head) * W), (at + head) * W);
  }

  /** Numbers per sample: the stride of a packed block. */
  static readonly FIELDS = W;

  /**
   * Histories packed into one block for a state snapshot: history i's samples, oldest first, follow history i-1's
   * (`count[i]` of them, FIELDS numbers each), so the block holds samples, not room. One typed array serialises and
   * reads back as a single copy.
   */
  static pack(histories: readonly HeartbeatHistory[], capacity: number): { data: Float64Array; count: Uint32Array } {
    const count = new Uint32Array(histories.length);
    histories.forEach((h, i) => {
      if (h.capacity !== capacity) throw new Error(`heartbeat history of capacity ${h.capacity}, not ${capacity}`);
      count[i] = h.count;
    });
    const data = new Float64Array(count.reduce((n, c) => n + c, 0) * W);
    let at = 0;
    histories.forEach((h) => {
      h.copyOldestFirst(data, at);
      at += h.count;
    });
    return { data, count };
  }

  /**
   * Starts packing `histories` as they are now, without copying them now: a state snapshot must hold each one as of
   * its seq, but copying 10,000 histories in one go held the event loop for hundreds of ms. The block is filled by
   * `step` in slices, and a history pushed to before its turn is copied first (copy on write).
   */
  static capture(histories: readonly HeartbeatHistory[], capacity: number): HistoryCapture {
    return new HistoryCapture(histories, capacity);
  }

  /**
   * The histories of a packed block, as views on it (no copy: the restored histories share one buffer until each
   * grows, and a full one never does). Throws on a block whose counts do not add up to its length.
   */
  static unpackAll(block: { data: Float64Array; count: Uint32Array }, capacity: number): HeartbeatHistory[] {
    const out: HeartbeatHistory[] = [];
    let at = 0;
    for (let i = 0; i < block.count.length; i++) {
      const count = block.count[i]!;
      if (count > capacity || (at + count) * W > block.data.length) throw new Error('snapshot: malformed heartbeat history');
      const h = Object.create(HeartbeatHistory.prototype) as HeartbeatHistory;
      // Room for exactly what it holds: the first push past that moves it to a ring of its own (`grow`).
      Object.assign(h, { capacity, data: block.data.subarray(at * W, (at + count) * W), slots: count, start: 0, count, capture: undefined, captureIndex: 0 });
      out.push(h);
      at += count;
    }
    if (at * W !== block.data.length) throw new Error('snapshot: malformed heartbeat history');
    return out;
  }

  /** For HistoryCapture: which capture still has to copy this history, and at which index. */
  heldFor(capture: HistoryCapture | undefined, index = 0): void {
    this.capture = capture;
    this.captureIndex = index;
  }
  get heldBy(): { capture: HistoryCapture; index: number } | undefined {
    return this.capture ? { capture: this.capture, index: this.captureIndex } : undefined;
  }
  /** Copies its samples, oldest first, into `data` at sample `at` (a packed block); returns how many. */
  packInto(data: Float64Array, at: number): number {
    this.copyOldestFirst(data, at);
    return this.count;
  }

  /** Oldest first. */
  samples(): HistorySample[] {
    const out: HistorySample[] = [];
    for (let i = 0; i < this.count; i++) {
      const o = ((this.start + i) % this.slots) * W;
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
 * chunks of CHUNK histories allocated when first written. One large allocation in the capture's first turn made V8
 * collect garbage there ("external memory pressure"), inside the pause the slicing is meant to avoid. Each history's
 * place in its chunk is fixed by the counts at the start: a push before its copy is made copies it first.
 */
export class HistoryCapture {
  readonly chunks: Array<Float64Array | undefined>;
  readonly count: Uint32Array;
  /** Sample offset of each history within its chunk. */
  private readonly offset: Uint32Array;
  /** Samples in each chunk. */
  private readonly chunkSamples: number[];
  private next = 0;

  constructor(
    private readonly histories: readonly HeartbeatHistory[],
    readonly capacity: number,
  ) {
    this.chunks = new Array(Math.ceil(histories.length / CHUNK));
    this.chunkSamples = new Array(this.chunks.length).fill(0);
    this.count = new Uint32Array(histories.length);
    this.offset = new Uint32Array(histories.length);
    histories.forEach((h, i) => {
      if (h.capacity !== capacity) throw new Error(`heartbeat history of capacity ${h.capacity}, not ${capacity}`);
      // A history still held by another capture (one given up on an error) is copied into that one first.
      h.heldBy?.capture.take(h);
      h.heldFor(this, i);
      const c = Math.floor(i / CHUNK);
      this.count[i] = h.length;
      this.offset[i] = this.chunkSamples[c]!;
      this.chunkSamples[c]! += h.length;
    });
  }

  private chunk(c: number): Float64Array {
    return (this.chunks[c] ??= new Float64Array(this.chunkSamples[c]! * W));
  }

  /** Copies history `h` if this capture still holds it (called by the history before it changes, or by `step`). */
  take(h: HeartbeatHistory): void {
    const held = h.heldBy;
    if (held?.capture !== this) return;
    h.packInto(this.chunk(Math.floor(held.index / CHUNK)), this.offset[held.index]!);
    h.heldFor(undefined);
  }

  /** Copies up to `n` more histories; true once every one is in the block. */
  step(n: number): boolean {
    const end = Math.min(this.histories.length, this.next + n);
    for (; this.next < end; this.next++) this.take(this.histories[this.next]!);
    return this.next >= this.histories.length;
  }

  /** Copies the rest at once (also how a capture that is given up lets go of its histories); the block in chunks. */
  finish(): { chunks: Float64Array[]; count: Uint32Array } {
    this.step(Infinity);
    const chunks = Array.from({ length: this.chunks.length }, (_, c) => this.chunk(c));
    return { chunks, count: this.count };
  }
}

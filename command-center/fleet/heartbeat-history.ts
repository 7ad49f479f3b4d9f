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

  constructor(readonly capacity = 120) {
    this.data = new Float64Array(capacity * W);
  }

  get length(): number {
    return this.count;
  }

  push(s: HistorySample): void {
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
    histories.forEach((h, i) => {
      if (h.capacity !== capacity) throw new Error(`heartbeat history of capacity ${h.capacity}, not ${capacity}`);
      data.set(h.data, i * stride);
      start[i] = h.start;
      count[i] = h.count;
    });
    return { data, start, count };
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

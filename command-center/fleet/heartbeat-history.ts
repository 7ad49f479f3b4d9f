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

  /**
   * A history read back from a state snapshot (v8 serialisation keeps the fields but not the class): checked, then
   * given its prototype again, without copying the samples.
   */
  static revive(o: unknown): HeartbeatHistory {
    const h = o as { capacity?: unknown; data?: unknown; start?: unknown; count?: unknown };
    const ok =
      typeof h === 'object' && h !== null && Number.isSafeInteger(h.capacity) && (h.capacity as number) > 0 && h.data instanceof Float64Array &&
      h.data.length === (h.capacity as number) * W && Number.isSafeInteger(h.start) && Number.isSafeInteger(h.count) &&
      (h.start as number) >= 0 && (h.start as number) < (h.capacity as number) && (h.count as number) >= 0 && (h.count as number) <= (h.capacity as number);
    if (!ok) throw new Error('snapshot: malformed heartbeat history');
    return Object.setPrototypeOf(h, HeartbeatHistory.prototype) as HeartbeatHistory;
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

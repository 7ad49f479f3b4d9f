/**
 * The de-duplication window: the most recent envelope keys (author + id, see pipeline.ts `dedupKey`) and the seq
 * each was stored at, bounded by count, evicted oldest first.
 *
 * Held compactly: a Map of 200,000 string keys cost ≈ 200 bytes an id (the key strings, often V8 cons strings of
 * their parts, plus the Map's entries), ≈ 41 MB, and a state snapshot serialised and parsed back 200,000 strings.
 * Here the keys' UTF-8 bytes are appended to 1 MiB chunks (keys leave in the order they came, so a chunk is dropped
 * once its last key is evicted), and an open-addressing table of slot numbers, probed by a seeded hash of those
 * bytes, finds them: ≈ 75 bytes an id at 40-byte keys, in a handful of typed arrays the garbage collector never
 * walks. Lookups compare the whole key, so a hash collision never makes a new fact look like a retry.
 *
 * Eviction order is the ring of slots (as before: an id enters when it is not in the window, and leaves when its
 * slot comes round again), not a Map's insertion order, whose iterator walks over tombstones after many deletions.
 */
import { randomBytes } from 'node:crypto';

const CHUNK_BYTES = 1 << 20;
const EMPTY = -1;

/** The window as a state snapshot stores it, canonical (the same contents give the same bytes): see exportState. */
export interface RecentIdsState {
  max: number;
  /** The slot the next new key takes (the oldest one's). */
  next: number;
  /** The seq of each slot's key (-1 for an empty slot). */
  seqs: Float64Array;
  /** Byte length of each slot's key (0 for an empty slot). */
  lengths: Uint32Array;
  /** The slots' keys, UTF-8, slot 0's first, without separators. */
  keys: Uint8Array;
}

export class RecentIds {
  static readonly DEFAULT_MAX = 200_000;
  /** Per process: which keys share a probe sequence is not predictable from outside. */
  private readonly seed = randomBytes(4).readUInt32LE(0);
  private readonly mask: number;
  /** Slot number + 1 of the key hashed there (0: free); linear probing, at most half full. */
  private readonly table: Int32Array;
  private readonly chunkOf: Uint32Array;
  private readonly offset: Uint32Array;
  private readonly length: Uint32Array;
  private readonly hashes: Int32Array;
  private readonly seqs: Float64Array;
  /** Live chunks: chunk number n is chunks[n - firstChunk]; keys are only ever appended to the last one. */
  private chunks: Uint8Array[] = [];
  private firstChunk = 0;
  private fill = 0;
  private next = 0;
  private scratch = Buffer.alloc(1024);

  constructor(private readonly max = RecentIds.DEFAULT_MAX) {
    let size = 1;
    while (size < max * 2) size *= 2;
    this.mask = size - 1;
    this.table = new Int32Array(size);
    this.chunkOf = new Uint32Array(max);
    this.offset = new Uint32Array(max);
    this.length = new Uint32Array(max);
    this.hashes = new Int32Array(max);
    this.seqs = new Float64Array(max).fill(EMPTY);
  }

  add(key: string, seq: number): void {
    const n = this.encode(key);
    const h = this.hash(this.scratch, 0, n);
    const found = this.find(this.scratch, n, h);
    if (found >= 0) {
      this.seqs[found] = seq;
      return;
    }
    const slot = this.next;
    if (this.seqs[slot] !== EMPTY) this.evict(slot);
    this.store(slot, this.scratch, 0, n, h);
    this.seqs[slot] = seq;
    this.next = (slot + 1) % this.max;
  }

  get(key: string): number | undefined {
    const n = this.encode(key);
    const slot = this.find(this.scratch, n, this.hash(this.scratch, 0, n));
    return slot < 0 ? undefined : this.seqs[slot];
  }

  /** Its contents for a state snapshot, canonical: exactly what `importState` takes back. */
  exportState(): RecentIdsState {
    return this.freeze()();
  }

  /**
   * The window as it is now, cheaply (a copy of the per-slot arrays; key bytes are never changed once written, so
   * the chunks are shared): the returned function builds the export later, e.g. in a later slice of a snapshot's
   * capture, whatever was added meanwhile.
   */
  freeze(): () => RecentIdsState {
    const { max, next } = this;
    const seqs = this.seqs.slice();
    const lengths = this.length.slice();
    const chunkOf = this.chunkOf.slice();
    const offset = this.offset.slice();
    const chunks = this.chunks.slice();
    const firstChunk = this.firstChunk;
    return () => {
      let total = 0;
      for (let s = 0; s < max; s++) total += lengths[s]!;
      const keys = new Uint8Array(total);
      let at = 0;
      for (let s = 0; s < max; s++) {
        const n = lengths[s]!;
        if (n === 0) continue;
        const o = offset[s]!;
        keys.set(chunks[chunkOf[s]! - firstChunk]!.subarray(o, o + n), at);
        at += n;
      }
      return { max, next, seqs, lengths, keys };
    };
  }

  /** Takes the contents of a snapshot taken with the same bound; false (and unchanged) when they do not fit. */
  importState(s: RecentIdsState): boolean {
    if (s?.max !== this.max || !Number.isSafeInteger(s.next) || s.next < 0 || s.next >= this.max) return false;
    if (!(s.seqs instanceof Float64Array) || s.seqs.length !== this.max || !(s.lengths instanceof Uint32Array) || s.lengths.length !== this.max || !(s.keys instanceof Uint8Array)) return false;
    let total = 0;
    for (let i = 0; i < this.max; i++) {
      const empty = s.seqs[i] === EMPTY;
      if (empty !== (s.lengths[i] === 0) || (!empty && !(s.seqs[i]! >= 0))) return false;
      total += s.lengths[i]!;
    }
    if (total !== s.keys.length) return false;
    // Checked in full before anything changes: a duplicate key would make lookups depend on probe order.
    const table = new Int32Array(this.table.length);
    const hashes = new Int32Array(this.max);
    const offset = new Uint32Array(this.max);
    let at = 0;
    for (let i = 0; i < this.max; i++) {
      const n = s.lengths[i]!;
      offset[i] = at;
      if (n > 0) {
        const h = this.hash(s.keys, at, n);
        let p = h & this.mask;
        for (; table[p] !== 0; p = (p + 1) & this.mask) {
          const other = table[p]! - 1;
          if (hashes[other] === h && s.lengths[other] === n && equalBytes(s.keys, offset[other]!, s.keys, at, n)) return false;
        }
        table[p] = i + 1;
        hashes[i] = h;
      }
      at += n;
    }
    this.table.set(table);
    this.hashes.set(hashes);
    this.offset.set(offset);
    this.length.set(s.lengths);
    this.seqs.set(s.seqs);
    this.chunkOf.fill(0);
    // A copy when the keys given are a view into a larger buffer (v8.deserialize makes typed arrays views of its
    // input), which would then stay alive as long as these keys do. Keys with a buffer of their own are kept as
    // they are (a snapshot load copied them already): this chunk is full, so nothing is ever written into it.
    const own = s.keys.byteOffset === 0 && s.keys.byteLength === s.keys.buffer.byteLength;
    this.chunks = [own ? s.keys : new Uint8Array(s.keys)];
    this.firstChunk = 0;
    this.fill = s.keys.length;
    this.next = s.next;
    return true;
  }

  /** The key's UTF-8 bytes into `scratch`; their count. */
  private encode(key: string): number {
    if (key.length * 3 > this.scratch.length) this.scratch = Buffer.alloc(key.length * 3);
    return this.scratch.write(key, 0, 'utf8');
  }

  private find(bytes: Uint8Array, n: number, h: number): number {
    for (let p = h & this.mask; this.table[p] !== 0; p = (p + 1) & this.mask) {
      const slot = this.table[p]! - 1;
      if (this.hashes[slot] === h && this.length[slot] === n) {
        const chunk = this.chunks[this.chunkOf[slot]! - this.firstChunk]!;
        if (equalBytes(chunk, this.offset[slot]!, bytes, 0, n)) return slot;
      }
    }
    return -1;
  }

  private store(slot: number, bytes: Uint8Array, from: number, n: number, h: number): void {
    let last = this.chunks[this.chunks.length - 1];
    if (!last || this.fill + n > last.length) {
      last = new Uint8Array(Math.max(CHUNK_BYTES, n));
      this.chunks.push(last);
      this.fill = 0;
    }
    last.set(bytes.subarray(from, from + n), this.fill);
    this.chunkOf[slot] = this.firstChunk + this.chunks.length - 1;
    this.offset[slot] = this.fill;
    this.length[slot] = n;
    this.hashes[slot] = h;
    this.fill += n;
    let p = h & this.mask;
    while (this.table[p] !== 0) p = (p + 1) & this.mask;
    this.table[p] = slot + 1;
  }

  /** Removes the oldest key (slot `slot`) from the table, and the chunks only keys older than it used. */
  private evict(slot: number): void {
    let i = this.hashes[slot]! & this.mask;
    while (this.table[i] !== slot + 1) i = (i + 1) & this.mask;
    // Backward-shift deletion: entries after the hole that may sit in it move up, so probes never stop early.
    for (let j = (i + 1) & this.mask; this.table[j] !== 0; j = (j + 1) & this.mask) {
      const home = this.hashes[this.table[j]! - 1]! & this.mask;
      if (((j - home) & this.mask) >= ((j - i) & this.mask)) {
        this.table[i] = this.table[j]!;
        i = j;
      }
    }
    this.table[i] = 0;
    this.seqs[slot] = EMPTY;
    this.length[slot] = 0;
    while (this.firstChunk < this.chunkOf[slot]!) {
      this.chunks.shift();
      this.firstChunk++;
    }
  }

  /** Murmur3's 32-bit hash of `n` bytes of `b` from `at`, seeded per process. */
  private hash(b: Uint8Array, at: number, n: number): number {
    let h = this.seed;
    const end4 = at + (n & ~3);
    let i = at;
    for (; i < end4; i += 4) {
      let k = b[i]! | (b[i + 1]! << 8) | (b[i + 2]! << 16) | (b[i + 3]! << 24);
      k = Math.imul(k, 0xcc9e2d51);
      k = (k << 15) | (k >>> 17);
      h ^= Math.imul(k, 0x1b873593);
      h = (h << 13) | (h >>> 19);
      h = (Math.imul(h, 5) + 0xe6546b64) | 0;
    }
    const tail = n & 3;
    if (tail > 0) {
      let k = b[i]!;
      if (tail > 1) k ^= b[i + 1]! << 8;
      if (tail > 2) k ^= b[i + 2]! << 16;
      k = Math.imul(k, 0xcc9e2d51);
      k = (k << 15) | (k >>> 17);
      h ^= Math.imul(k, 0x1b873593);
    }
    h ^= n;
    h ^= h >>> 16;
    h = Math.imul(h, 0x85ebca6b);
    h ^= h >>> 13;
    h = Math.imul(h, 0xc2b2ae35);
    h ^= h >>> 16;
    // Signed: an unsigned 32-bit result above 2^31 is a heap number, allocated at every call.
    return h | 0;
  }
}

function equalBytes(a: Uint8Array, ao: number, b: Uint8Array, bo: number, n: number): boolean {
  for (let k = 0; k < n; k++) if (a[ao + k] !== b[bo + k]) return false;
  return true;
}

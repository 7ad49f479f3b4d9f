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
  /**
   * The lookup table, each slot's hash and the seed they were made with (`freeze({ index: true })`, for a state
   * snapshot): an import that has them checks them in one pass instead of hashing every key and probing the table
   * (≈ 100–150 ms of a start at 200,000 keys). Not part of the canonical contents: two windows with the same keys
   * have different seeds, and the table's layout depends on the order of past evictions.
   */
  index?: RecentIdsIndex;
}

export interface RecentIdsIndex {
  seed: number;
  hashes: Int32Array;
  table: Int32Array;
}

/** Keys whose saved hash an import checks against a fresh one: a wrong seed or a shifted array shows at once. */
const INDEX_SPOT_CHECKS = 64;

export class RecentIds {
  static readonly DEFAULT_MAX = 200_000;
  /**
   * Random per window, so which keys share a probe sequence is not predictable from outside. A state snapshot
   * carries it (the snapshot is 0600, next to the admin token), so a start from the snapshot keeps the saved hashes.
   */
  private seed = randomBytes(4).readUInt32LE(0);
  private readonly mask: number;
  /** Slot number + 1 of the key hashed there (0: free); linear probing, at most half full. */
  private table: Int32Array;
  private readonly chunkOf: Uint32Array;
  private offset: Uint32Array;
  private readonly length: Uint32Array;
  private hashes: Int32Array;
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
  freeze(opts: { index?: boolean } = {}): () => RecentIdsState {
    const { max, next, seed } = this;
    const index = opts.index ? { seed, hashes: this.hashes.slice(), table: this.table.slice() } : undefined;
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
      return index ? { max, next, seqs, lengths, keys, index } : { max, next, seqs, lengths, keys };
    };
  }

  /** Takes the contents of a snapshot taken with the same bound; false (and unchanged) when they do not fit. */
  importState(s: RecentIdsState): boolean {
    if (s?.max !== this.max || !Number.isSafeInteger(s.next) || s.next < 0 || s.next >= this.max) return false;
    if (!(s.seqs instanceof Float64Array) || s.seqs.length !== this.max || !(s.lengths instanceof Uint32Array) || s.lengths.length !== this.max || !(s.keys instanceof Uint8Array)) return false;
    // Locals, not `s.…`: a deserialised object's properties are slow to read in a loop of 200,000.
    const { seqs, lengths, keys } = s;
    const max = this.max;
    const mask = this.mask;
    const offset = new Uint32Array(max);
    let total = 0;
    let used = 0;
    for (let i = 0; i < max; i++) {
      const empty = seqs[i] === EMPTY;
      if (empty !== (lengths[i] === 0) || (!empty && !(seqs[i]! >= 0))) return false;
      offset[i] = total;
      total += lengths[i]!;
      if (!empty) used++;
    }
    if (total !== keys.length) return false;
    const saved = this.savedIndex(s, offset);
    let table: Int32Array;
    let hashes: Int32Array;
    if (saved?.table && tableHolds(saved.table, saved.hashes, lengths, used)) {
      // Keys twice (a writer's bug; the snapshot is checksummed) are not looked for on this path.
      table = saved.table.slice();
      hashes = saved.hashes.slice();
    } else {
      // Checked in full before anything changes: a duplicate key would make lookups depend on probe order.
      const hashOf = saved ? (i: number) => saved.hashes[i]! : (i: number) => this.hash(keys, offset[i]!, lengths[i]!);
      table = new Int32Array(this.table.length);
      hashes = new Int32Array(max);
      for (let i = 0; i < max; i++) {
        const n = lengths[i]!;
        if (n === 0) continue;
        const h = hashOf(i);
        let p = h & mask;
        for (; table[p] !== 0; p = (p + 1) & mask) {
          const other = table[p]! - 1;
          if (hashes[other] === h && lengths[other] === n && equalBytes(keys, offset[other]!, keys, offset[i]!, n)) return false;
        }
        table[p] = i + 1;
        hashes[i] = h;
      }
    }
    if (saved) this.seed = saved.seed;
    this.table = table;
    this.hashes = hashes;
    this.offset = offset;
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

  /**
   * The state's saved index when it can be used: the right shape, and a spread of keys hash to the saved hashes
   * under the saved seed (a snapshot is checksummed, so this guards against a writer's bug, not against tampering).
   */
  private savedIndex(s: RecentIdsState, offset: Uint32Array): { seed: number; hashes: Int32Array; table?: Int32Array } | undefined {
    const x = s.index;
    if (!x || !Number.isInteger(x.seed) || x.seed < 0 || x.seed > 0xffffffff) return undefined;
    if (!(x.hashes instanceof Int32Array) || x.hashes.length !== this.max) return undefined;
    const own = this.seed;
    this.seed = x.seed;
    try {
      const step = Math.max(1, Math.floor(this.max / INDEX_SPOT_CHECKS));
      for (let i = 0; i < this.max; i += step) {
        const n = s.lengths[i]!;
        if (n > 0 && this.hash(s.keys, offset[i]!, n) !== x.hashes[i]) return undefined;
      }
      const table = x.table instanceof Int32Array && x.table.length === this.table.length ? x.table : undefined;
      return { seed: x.seed, hashes: x.hashes, table };
    } finally {
      this.seed = own;
    }
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

  /** Murmur3's 32-bit hash of `n` bytes of `b` from `at`, seeded per window. */
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

/**
 * Whether a saved table is one that lookups can trust: every used slot in it exactly once, nothing else, and each
 * where a probe from its hash's home reaches it (no free entry between the two). One pass, in table order.
 */
function tableHolds(table: Int32Array, hashes: Int32Array, lengths: Uint32Array, used: number): boolean {
  const mask = table.length - 1;
  const seen = new Uint8Array(lengths.length);
  const free = table.indexOf(0);
  if (free < 0) return false;
  let runStart = (free + 1) & mask;
  let count = 0;
  for (let k = 1; k <= table.length; k++) {
    const j = (free + k) & mask;
    const v = table[j]!;
    if (v === 0) {
      runStart = (j + 1) & mask;
      continue;
    }
    const slot = v - 1;
    if (slot < 0 || slot >= lengths.length || lengths[slot] === 0 || seen[slot] === 1) return false;
    seen[slot] = 1;
    count++;
    if (((j - (hashes[slot]! & mask)) & mask) > ((j - runStart) & mask)) return false;
  }
  return count === used;
}

function equalBytes(a: Uint8Array, ao: number, b: Uint8Array, bo: number, n: number): boolean {
  for (let k = 0; k < n; k++) if (a[ao + k] !== b[bo + k]) return false;
  return true;
}

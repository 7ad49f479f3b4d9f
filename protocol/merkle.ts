/**
 * RFC 6962 §2.1 Merkle trees (as restated in RFC 9162 §2.1), over SHA-256:
 *
 *   leaf hash  = SHA-256(0x00 ‖ leaf bytes)
 *   node hash  = SHA-256(0x01 ‖ left ‖ right)
 *   empty tree = SHA-256("")
 *   MTH(D[n])  = node hash of MTH(D[0:k]) and MTH(D[k:n]), k = the largest power of two smaller than n
 *
 * Pure functions for roots, inclusion proofs (§2.1.1), consistency proofs (§2.1.2) and their verification
 * (RFC 9162 §2.1.3.2 / §2.1.4.2), usable by third parties without the rest of VaultMesh. Two stateful helpers
 * make an append-only log cheap: `MerkleFrontier` (the compact frontier of perfect subtrees: O(log n) memory,
 * O(1) amortised hashing per append) and `MerkleLog` (packed leaf hashes plus cached perfect-subtree hashes, so
 * proofs over a million leaves take well under a millisecond instead of rehashing the tree).
 *
 * All hashes are 32-byte `Uint8Array`s (Node `Buffer`s are returned). Tree sizes and indices are plain numbers,
 * exact up to 2^53; the bit arithmetic below avoids 32-bit operators for that reason.
 */
import { hash as oneShotHash } from 'node:crypto';
import { HEX32_RE } from './hex.js';

/** Size in bytes of every hash in the tree. */
export const HASH_SIZE = 32;

/** Anything indexable that holds leaf hashes: a plain array of 32-byte hashes, or a `MerkleLog`. */
export interface LeafHashList {
  readonly length: number;
  at(index: number): Uint8Array | undefined;
}

function sha256(data: Uint8Array): Buffer {
  // crypto.hash (Node ≥ 20.12) skips the Hash object: ≈25 % faster than createHash for 65-byte inputs.
  return oneShotHash('sha256', data, 'buffer');
}

/** The root of the empty tree: SHA-256 of the empty string. */
export const EMPTY_ROOT: Buffer = sha256(new Uint8Array(0));

// One scratch buffer for node hashes (0x01 ‖ left ‖ right): hashing is synchronous, so it is never shared across
// calls in flight, and it saves an allocation per node, which is most of the cost above the raw SHA-256 calls.
const nodeScratch = Buffer.alloc(1 + 2 * HASH_SIZE);
nodeScratch[0] = 0x01;
let leafScratch = Buffer.alloc(4096);

/** RFC 6962 leaf hash: SHA-256(0x00 ‖ bytes). For a journal line, `bytes` is the line without its newline. */
export function leafHash(bytes: Uint8Array): Buffer {
  if (bytes.length + 1 > leafScratch.length) leafScratch = Buffer.alloc(Math.max(bytes.length + 1, leafScratch.length * 2));
  leafScratch[0] = 0x00;
  leafScratch.set(bytes, 1);
  return sha256(leafScratch.subarray(0, bytes.length + 1));
}

/** RFC 6962 interior node hash: SHA-256(0x01 ‖ left ‖ right). */
export function nodeHash(left: Uint8Array, right: Uint8Array): Buffer {
  if (left.length !== HASH_SIZE || right.length !== HASH_SIZE) throw new RangeError('node hash inputs must be 32 bytes');
  nodeScratch.set(left, 1);
  nodeScratch.set(right, 1 + HASH_SIZE);
  return sha256(nodeScratch);
}

/** The largest power of two strictly smaller than `n` (n ≥ 2): the size of the left subtree of an n-leaf tree. */
export function splitPoint(n: number): number {
  if (!(n >= 2)) throw new RangeError(`no split for a tree of ${n} leaves`);
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

function isPowerOfTwo(n: number): boolean {
  return n >= 1 && Number.isSafeInteger(n) && 2 ** Math.round(Math.log2(n)) === n;
}

const isOdd = (x: number): boolean => x % 2 === 1;
const half = (x: number): number => Math.floor(x / 2);

function assertSize(name: string, value: number): void {
  if (!Number.isSafeInteger(value) || value < 0) throw new RangeError(`${name} must be a non-negative integer, got ${value}`);
}

function leafAt(leaves: LeafHashList, index: number): Uint8Array {
  const h = leaves.at(index);
  if (!h || h.length !== HASH_SIZE) throw new RangeError(`leaf hash ${index} is missing or not 32 bytes`);
  return h;
}

/**
 * MTH of the leaves `start..end-1` (a sub-list, which is itself a tree in RFC 6962 terms), computed bottom-up with a
 * stack of perfect subtrees: n−1 node hashes, O(log n) memory.
 */
export function subtreeRoot(leaves: LeafHashList, start: number, end: number): Buffer {
  assertSize('start', start);
  assertSize('end', end);
  if (end > leaves.length || start > end) throw new RangeError(`range ${start}..${end} is outside 0..${leaves.length}`);
  if (start === end) return EMPTY_ROOT;
  const frontier = new MerkleFrontier();
  for (let i = start; i < end; i++) frontier.append(leafAt(leaves, i));
  return frontier.root();
}

/** MTH(D[n]) of all `leaves` (already leaf-hashed). `EMPTY_ROOT` for none. */
export function merkleRoot(leaves: LeafHashList): Buffer {
  return subtreeRoot(leaves, 0, leaves.length);
}

/** A function giving MTH of leaves start..end-1; lets proofs run over plain arrays or cached logs alike. */
export type RangeHasher = (start: number, end: number) => Uint8Array;

/** RFC 6962 §2.1.1 PATH(m, D[n]) with subtree hashes from `hashRange`. Ordered from the leaf up. */
export function inclusionPathWith(hashRange: RangeHasher, index: number, treeSize: number): Buffer[] {
  assertSize('index', index);
  assertSize('treeSize', treeSize);
  if (index >= treeSize) throw new RangeError(`leaf ${index} is not in a tree of ${treeSize}`);
  const topDown: Uint8Array[] = [];
  let start = 0;
  let end = treeSize;
  let m = index;
  while (end - start > 1) {
    const k = splitPoint(end - start);
    if (m < k) {
      topDown.push(hashRange(start + k, end));
      end = start + k;
    } else {
      topDown.push(hashRange(start, start + k));
      start += k;
      m -= k;
    }
  }
  return topDown.reverse().map(toBuffer);
}

/**
 * RFC 6962 §2.1.2 PROOF(m, D[n]) = SUBPROOF(m, D[n], true) with subtree hashes from `hashRange`. Empty when
 * m = n or m = 0 (every tree extends the empty tree, so there is nothing to prove).
 */
export function consistencyPathWith(hashRange: RangeHasher, oldSize: number, newSize: number): Buffer[] {
  assertSize('oldSize', oldSize);
  assertSize('newSize', newSize);
  if (oldSize > newSize) throw new RangeError(`old size ${oldSize} is larger than new size ${newSize}`);
  if (oldSize === 0 || oldSize === newSize) return [];
  const topDown: Uint8Array[] = [];
  let start = 0;
  let end = newSize;
  let m = oldSize;
  let complete = true; // the b flag of SUBPROOF: still on the path of the old tree's own root
  for (;;) {
    const n = end - start;
    if (m === n) {
      if (!complete) topDown.push(hashRange(start, end));
      break;
    }
    const k = splitPoint(n);
    if (m <= k) {
      topDown.push(hashRange(start + k, end));
      end = start + k;
    } else {
      topDown.push(hashRange(start, start + k));
      start += k;
      m -= k;
      complete = false;
    }
  }
  return topDown.reverse().map(toBuffer);
}

function toBuffer(h: Uint8Array): Buffer {
  return Buffer.from(h); // a copy: proofs must not alias caller-owned or cached storage
}

/** RFC 6962 §2.1.1 inclusion proof (audit path) of leaf `index` in the tree of the first `treeSize` leaves. */
export function inclusionProof(leaves: LeafHashList, index: number, treeSize: number = leaves.length): Buffer[] {
  if (treeSize > leaves.length) throw new RangeError(`tree size ${treeSize} exceeds ${leaves.length} leaves`);
  return inclusionPathWith((s, e) => subtreeRoot(leaves, s, e), index, treeSize);
}

/** RFC 6962 §2.1.2 consistency proof between the trees of the first `oldSize` and `newSize` leaves. */
export function consistencyProof(leaves: LeafHashList, oldSize: number, newSize: number = leaves.length): Buffer[] {
  if (newSize > leaves.length) throw new RangeError(`tree size ${newSize} exceeds ${leaves.length} leaves`);
  return consistencyPathWith((s, e) => subtreeRoot(leaves, s, e), oldSize, newSize);
}

function sameHash(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === HASH_SIZE && b.length === HASH_SIZE && Buffer.compare(a, b) === 0;
}

function validProof(proof: readonly Uint8Array[]): boolean {
  return Array.isArray(proof) && proof.every((p) => p instanceof Uint8Array && p.length === HASH_SIZE);
}

/**
 * RFC 9162 §2.1.3.2: true iff `proof` shows that `leafHashValue` (the leaf *hash*, not the leaf bytes) is leaf
 * `index` of the tree of `treeSize` leaves whose root is `root`. Never throws on malformed input.
 */
export function verifyInclusion(
  leafHashValue: Uint8Array,
  index: number,
  treeSize: number,
  proof: readonly Uint8Array[],
  root: Uint8Array,
): boolean {
  if (!Number.isSafeInteger(index) || !Number.isSafeInteger(treeSize) || index < 0 || index >= treeSize) return false;
  if (!validProof(proof) || leafHashValue.length !== HASH_SIZE) return false;
  let fn = index;
  let sn = treeSize - 1;
  let r: Uint8Array = leafHashValue;
  for (const p of proof) {
    if (sn === 0) return false;
    if (isOdd(fn) || fn === sn) {
      r = nodeHash(p, r);
      if (!isOdd(fn)) {
        while (!isOdd(fn) && fn !== 0) {
          fn = half(fn);
          sn = half(sn);
        }
      }
    } else {
      r = nodeHash(r, p);
    }
    fn = half(fn);
    sn = half(sn);
  }
  return sn === 0 && sameHash(r, root);
}

/**
 * RFC 9162 §2.1.4.2: true iff `proof` shows the tree of `newSize` leaves with root `newRoot` extends the tree of
 * `oldSize` leaves with root `oldRoot`. Edge cases the RFC leaves to the caller: equal sizes need an empty proof and
 * equal roots; an old size of 0 needs an empty proof and `oldRoot` = EMPTY_ROOT. Never throws on malformed input.
 */
export function verifyConsistency(
  oldSize: number,
  newSize: number,
  oldRoot: Uint8Array,
  newRoot: Uint8Array,
  proof: readonly Uint8Array[],
): boolean {
  if (!Number.isSafeInteger(oldSize) || !Number.isSafeInteger(newSize) || oldSize < 0 || oldSize > newSize) return false;
  if (!validProof(proof)) return false;
  if (oldSize === 0) return proof.length === 0 && sameHash(oldRoot, EMPTY_ROOT) && newRoot.length === HASH_SIZE;
  if (oldSize === newSize) return proof.length === 0 && sameHash(oldRoot, newRoot);
  if (proof.length === 0) return false;
  const path: readonly Uint8Array[] = isPowerOfTwo(oldSize) ? [oldRoot, ...proof] : proof;
  let fn = oldSize - 1;
  let sn = newSize - 1;
  while (isOdd(fn)) {
    fn = half(fn);
    sn = half(sn);
  }
  let fr: Uint8Array = path[0]!;
  let sr: Uint8Array = path[0]!;
  for (let i = 1; i < path.length; i++) {
    const c = path[i]!;
    if (sn === 0) return false;
    if (isOdd(fn) || fn === sn) {
      fr = nodeHash(c, fr);
      sr = nodeHash(c, sr);
      if (!isOdd(fn)) {
        while (!isOdd(fn) && fn !== 0) {
          fn = half(fn);
          sn = half(sn);
        }
      }
    } else {
      sr = nodeHash(sr, c);
    }
    fn = half(fn);
    sn = half(sn);
  }
  return sn === 0 && sameHash(fr, oldRoot) && sameHash(sr, newRoot);
}

/** Serialisable state of a frontier: its size and the roots of its perfect subtrees, largest (leftmost) first. */
export interface FrontierState {
  size: number;
  nodes: string[];
}

/** Called when an append completes a perfect subtree: it covers leaves index·2^level … (index+1)·2^level − 1. */
export type PerfectNodeListener = (level: number, index: number, hash: Buffer) => void;

/**
 * The compact frontier of an append-only Merkle tree: one root per perfect subtree (one per set bit of `size`).
 * `append` does one node hash per trailing one bit of the old size (amortised 1, worst case log n); `root` folds
 * the frontier right to left (≤ log n hashes). The tree is never rebuilt.
 */
export class MerkleFrontier {
  private readonly nodes: Buffer[] = [];
  private count = 0;

  constructor(private readonly onPerfectNode?: PerfectNodeListener) {}

  /** Restores a frontier saved with `toJSON()`; throws if the state is malformed. */
  static fromState(state: FrontierState, onPerfectNode?: PerfectNodeListener): MerkleFrontier {
    assertSize('size', state.size);
    let bits = 0;
    for (let s = state.size; s > 0; s = half(s)) if (isOdd(s)) bits++;
    if (state.nodes.length !== bits) throw new RangeError(`a frontier of size ${state.size} has ${bits} nodes, got ${state.nodes.length}`);
    const f = new MerkleFrontier(onPerfectNode);
    for (const hex of state.nodes) {
      if (!HEX32_RE.test(hex)) throw new RangeError('frontier nodes must be 64 lowercase hex characters');
      f.nodes.push(Buffer.from(hex, 'hex'));
    }
    f.count = state.size;
    return f;
  }

  get size(): number {
    return this.count;
  }

  append(leafHashValue: Uint8Array): void {
    if (leafHashValue.length !== HASH_SIZE) throw new RangeError('leaf hash must be 32 bytes');
    let h: Uint8Array = leafHashValue;
    let index = this.count;
    let level = 0;
    // Each trailing 1 bit of the old size is a perfect subtree of the same height as h: merge them.
    for (let s = this.count; isOdd(s); s = half(s)) {
      const merged = nodeHash(this.nodes.pop()!, h);
      level++;
      index = half(index);
      this.onPerfectNode?.(level, index, merged);
      h = merged;
    }
    // Only an unmerged leaf is kept by reference from the caller; copy it so later caller writes cannot reach us.
    this.nodes.push(level === 0 ? Buffer.from(h) : (h as Buffer));
    this.count++;
  }

  /** MTH of everything appended so far. */
  root(): Buffer {
    const n = this.nodes.length;
    if (n === 0) return EMPTY_ROOT;
    let r = this.nodes[n - 1]!;
    for (let i = n - 2; i >= 0; i--) r = nodeHash(this.nodes[i]!, r);
    return r;
  }

  toJSON(): FrontierState {
    return { size: this.count, nodes: this.nodes.map((b) => b.toString('hex')) };
  }
}

/** A new empty frontier (or one restored from `state`). */
export function createMerkleFrontier(state?: FrontierState): MerkleFrontier {
  return state ? MerkleFrontier.fromState(state) : new MerkleFrontier();
}

/** Growable packed array of 32-byte hashes: 32 bytes per entry instead of a Buffer object each. */
class PackedHashes {
  private buf: Buffer;
  length = 0;

  constructor(capacity = 1024) {
    this.buf = Buffer.allocUnsafe(capacity * HASH_SIZE);
  }

  push(h: Uint8Array): void {
    if ((this.length + 1) * HASH_SIZE > this.buf.length) {
      const bigger = Buffer.allocUnsafe(this.buf.length * 2);
      this.buf.copy(bigger, 0, 0, this.length * HASH_SIZE);
      this.buf = bigger;
    }
    this.buf.set(h, this.length * HASH_SIZE);
    this.length++;
  }

  /** A view (no copy) of entry i; valid until the next push that grows the buffer. */
  view(i: number): Buffer {
    return this.buf.subarray(i * HASH_SIZE, (i + 1) * HASH_SIZE);
  }

  /** A view of the first `length` entries. Entries are never rewritten, so it stays valid (a growth copies them). */
  prefix(): Buffer {
    return this.buf.subarray(0, this.length * HASH_SIZE);
  }

  /** Entries copied from `bytes` (a multiple of 32 bytes), with room to grow. */
  static from(bytes: Uint8Array): PackedHashes {
    const p = new PackedHashes(Math.max(16, Math.ceil((bytes.length / HASH_SIZE) * 1.25)));
    p.buf.set(bytes, 0);
    p.length = bytes.length / HASH_SIZE;
    return p;
  }
}

/**
 * A MerkleLog's tree apart from its leaf hashes (which a caller keeps elsewhere, e.g. a leaf cache file): the
 * frontier and the cached perfect-subtree levels, so that it can be restored without hashing again.
 */
export interface MerkleTreeState {
  size: number;
  cacheFromLevel: number;
  frontier: FrontierState;
  /** levels[L]: the hashes of the complete subtrees of 2^L leaves, left to right (null below cacheFromLevel). */
  levels: Array<Uint8Array | null>;
}

export interface MerkleLogOptions {
  /**
   * Perfect subtrees of 2^level leaves and up are cached as the log grows (about 2·32 bytes per 2^level leaves),
   * so a proof hashes fewer than 2^level leaves itself. 4 (16 leaves) keeps the cache at 1/8 of the leaf store
   * (4 MB per million leaves) and a proof at ~15 node hashes plus one right-edge subtree.
   */
  cacheFromLevel?: number;
  /** Initial leaf capacity (grows by doubling). */
  capacity?: number;
}

/**
 * An append-only log of leaf hashes with everything needed to answer for any past size: roots, inclusion proofs
 * and consistency proofs. Leaf hashes are stored packed (32 bytes each); perfect subtree hashes of height ≥
 * `cacheFromLevel` are recorded as the frontier completes them, at no extra hashing cost.
 */
export class MerkleLog implements LeafHashList {
  private leaves: PackedHashes;
  private levels: PackedHashes[] = [];
  private frontier: MerkleFrontier;
  private readonly cacheFromLevel: number;

  constructor(opts: MerkleLogOptions = {}) {
    this.cacheFromLevel = Math.max(1, opts.cacheFromLevel ?? 4);
    this.leaves = new PackedHashes(opts.capacity ?? 1024);
    this.frontier = new MerkleFrontier(this.onPerfectNode);
  }

  private readonly onPerfectNode: PerfectNodeListener = (level, index, h) => {
    if (level < this.cacheFromLevel) return;
    const store = (this.levels[level] ??= new PackedHashes(16));
    // Frontier merges complete nodes of each level strictly left to right, so `index` is always the next slot.
    if (store.length !== index) throw new Error(`merkle cache out of order at level ${level}`);
    store.push(h);
  };

  /**
   * The tree without its leaves, and a view of the leaves (both stay valid whatever is appended later: entries
   * are never rewritten). Costs no hashing and no copy.
   */
  exportTree(): { tree: MerkleTreeState; leaves: Buffer } {
    const levels = Array.from({ length: this.levels.length }, (_, l) => this.levels[l]?.prefix() ?? null);
    return { tree: { size: this.size, cacheFromLevel: this.cacheFromLevel, frontier: this.frontier.toJSON(), levels }, leaves: this.leaves.prefix() };
  }

  /**
   * A log from its leaf hashes and a tree exported with them (`exportTree`), without hashing: O(size) copying.
   * The caller vouches that `leaves` are the leaves the tree was exported with (e.g. by a digest of them); the
   * shapes are checked here, and a tree that does not fit throws RangeError.
   */
  static restore(leaves: Uint8Array, tree: MerkleTreeState): MerkleLog {
    if (leaves.length % HASH_SIZE !== 0) throw new RangeError('leaf hashes must be a multiple of 32 bytes');
    const size = leaves.length / HASH_SIZE;
    if (tree?.size !== size || !Number.isSafeInteger(tree.cacheFromLevel) || tree.cacheFromLevel < 1 || !Array.isArray(tree.levels)) throw new RangeError(`a tree of ${tree?.size} leaves does not fit ${size} leaf hashes`);
    const log = new MerkleLog({ cacheFromLevel: tree.cacheFromLevel, capacity: 16 });
    const frontier = MerkleFrontier.fromState(tree.frontier, log.onPerfectNode);
    if (frontier.size !== size) throw new RangeError('the frontier does not cover the leaves');
    let top = 0;
    while (2 ** (top + 1) <= size) top++;
    if (tree.levels.length > top + 1) throw new RangeError('more cached levels than the tree has');
    const levels: PackedHashes[] = [];
    for (let l = tree.cacheFromLevel; l <= top; l++) {
      const level = tree.levels[l];
      const want = Math.floor(size / 2 ** l) * HASH_SIZE;
      if (!(level instanceof Uint8Array) || level.length !== want) throw new RangeError(`cached level ${l} holds ${level?.length} bytes, not ${want}`);
      levels[l] = PackedHashes.from(level);
    }
    log.leaves = PackedHashes.from(leaves);
    log.levels = levels;
    log.frontier = frontier;
    return log;
  }

  get length(): number {
    return this.leaves.length;
  }

  get size(): number {
    return this.leaves.length;
  }

  /** Leaf hash `index` (a copy), or undefined past the end. */
  at(index: number): Buffer | undefined {
    if (!Number.isSafeInteger(index) || index < 0 || index >= this.leaves.length) return undefined;
    return Buffer.from(this.leaves.view(index));
  }

  append(leafHashValue: Uint8Array): void {
    this.frontier.append(leafHashValue);
    this.leaves.push(leafHashValue);
  }

  /** Root of the whole log (≤ log n hashes). */
  root(): Buffer {
    return this.frontier.root();
  }

  /** Root of the first `size` leaves. */
  rootAt(size: number): Buffer {
    if (size === this.size) return this.root();
    return Buffer.from(this.hashRange(0, size));
  }

  /** MTH of leaves start..end-1, from the cache where the range is a cached perfect subtree. */
  hashRange(start: number, end: number): Uint8Array {
    assertSize('start', start);
    assertSize('end', end);
    if (end > this.size || start > end) throw new RangeError(`range ${start}..${end} is outside 0..${this.size}`);
    const n = end - start;
    if (n === 0) return EMPTY_ROOT;
    if (n === 1) return this.leaves.view(start);
    if (isPowerOfTwo(n)) {
      // Every perfect subtree the RFC recursion asks for is aligned (start is a multiple of n), hence cached
      // once complete if it is tall enough; anything shorter is at most 2^cacheFromLevel leaves to fold.
      const cached = start % n === 0 ? this.levels[Math.round(Math.log2(n))] : undefined;
      if (cached && start / n < cached.length) return cached.view(start / n);
      return this.foldLeaves(start, end);
    }
    const k = splitPoint(n);
    return nodeHash(this.hashRange(start, start + k), this.hashRange(start + k, end));
  }

  private foldLeaves(start: number, end: number): Buffer {
    const f = new MerkleFrontier();
    for (let i = start; i < end; i++) f.append(this.leaves.view(i));
    return f.root();
  }

  /** Inclusion proof of leaf `index` in the tree of the first `treeSize` leaves (default: all). */
  inclusionProof(index: number, treeSize: number = this.size): Buffer[] {
    if (treeSize > this.size) throw new RangeError(`tree size ${treeSize} exceeds ${this.size} leaves`);
    return inclusionPathWith((s, e) => this.hashRange(s, e), index, treeSize);
  }

  /** Consistency proof from the tree of the first `oldSize` leaves to that of the first `newSize`. */
  consistencyProof(oldSize: number, newSize: number = this.size): Buffer[] {
    if (newSize > this.size) throw new RangeError(`tree size ${newSize} exceeds ${this.size} leaves`);
    return consistencyPathWith((s, e) => this.hashRange(s, e), oldSize, newSize);
  }
}

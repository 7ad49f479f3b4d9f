import { createHash } from 'node:crypto';
import { MerkleTree } from 'merkletreejs';
import { describe, expect, it } from 'vitest';
import {
  EMPTY_ROOT,
  HASH_SIZE,
  MerkleFrontier,
  MerkleLog,
  consistencyProof,
  createMerkleFrontier,
  inclusionProof,
  leafHash,
  merkleRoot,
  nodeHash,
  splitPoint,
  subtreeRoot,
  verifyConsistency,
  verifyInclusion,
} from './merkle.js';

// ---- Reference: RFC 6962 §2.1 read literally (recursive, slow, independent of merkle.ts) ----
const sha = (...parts: Uint8Array[]): Buffer => {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return h.digest();
};
const refLeaf = (d: Uint8Array) => sha(Buffer.from([0]), d);
const refNode = (l: Uint8Array, r: Uint8Array) => sha(Buffer.from([1]), l, r);
const refK = (n: number) => {
  let k = 1;
  while (k < n) k <<= 1;
  return k >> 1;
};
/** MTH(D[n]) over leaf *hashes*. */
function mth(h: Buffer[]): Buffer {
  if (h.length === 0) return sha();
  if (h.length === 1) return h[0]!;
  const k = refK(h.length);
  return refNode(mth(h.slice(0, k)), mth(h.slice(k)));
}
/** PATH(m, D[n]). */
function path(m: number, h: Buffer[]): Buffer[] {
  if (h.length <= 1) return [];
  const k = refK(h.length);
  return m < k ? [...path(m, h.slice(0, k)), mth(h.slice(k))] : [...path(m - k, h.slice(k)), mth(h.slice(0, k))];
}
/** SUBPROOF(m, D[n], b). */
function subproof(m: number, h: Buffer[], b: boolean): Buffer[] {
  const n = h.length;
  if (m === n) return b ? [] : [mth(h)];
  const k = refK(n);
  return m <= k
    ? [...subproof(m, h.slice(0, k), b), mth(h.slice(k))]
    : [...subproof(m - k, h.slice(k), false), mth(h.slice(0, k))];
}
const proofRef = (m: number, h: Buffer[]) => subproof(m, h, true);

// ---- merkletreejs configured for RFC 6962: leaves pre-hashed with 0x00, nodes hashed as SHA-256(0x01‖l‖r),
// odd nodes promoted (no duplicateOdd), no sorting, no default fill. It returns an empty buffer for an empty tree.
function libTree(leaves: Buffer[]): MerkleTree {
  return new MerkleTree(leaves, (data: Buffer) => sha(data), {
    hashLeaves: false,
    sortPairs: false,
    sortLeaves: false,
    duplicateOdd: false,
    concatenator: (parts: Buffer[]) => Buffer.concat([Buffer.from([1]), ...parts]),
  });
}

/** Deterministic pseudo-random bytes so failures reproduce. */
function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 2 ** 32;
  };
}
const leavesOf = (n: number, seed = n): Buffer[] => {
  const r = rng(seed);
  return Array.from({ length: n }, (_, i) => leafHash(Buffer.from(`{"i":${i},"r":${Math.floor(r() * 1e9)}}`)));
};
const hex = (bs: Uint8Array[]) => bs.map((b) => Buffer.from(b).toString('hex'));

describe('hash primitives', () => {
  it('matches RFC 6962 definitions', () => {
    expect(EMPTY_ROOT.toString('hex')).toBe('e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
    expect(leafHash(Buffer.from('')).toString('hex')).toBe('6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d');
    const a = leafHash(Buffer.from('a'));
    const b = leafHash(Buffer.from('b'));
    expect(a).toEqual(refLeaf(Buffer.from('a')));
    expect(nodeHash(a, b)).toEqual(refNode(a, b));
    expect(leafHash(Buffer.alloc(10_000, 7))).toEqual(refLeaf(Buffer.alloc(10_000, 7)));
  });

  it('reproduces the worked 3-leaf example of docs/LEDGER.md', () => {
    const l = ['{"n":0}', '{"n":1}', '{"n":2}'].map((t) => leafHash(Buffer.from(t)));
    expect(hex(l)).toEqual([
      'f94070abfd2da0bf72902eb13a808e794f954d9e2745c682a158f6ed0d4ac036',
      'fb5d93e6cf90bc9470cd9ea9d9e12348993db3e854ab2b7660e3594767045f6c',
      '3d1de776df086c1ae9f7049d2bb0c0475ad14185f987e064e8d10dcb2db4a322',
    ]);
    const n01 = '3badc80537f029e1bb77280dc85203cf2ed9748dc8f571230fcba5c326c91068';
    expect(merkleRoot(l).toString('hex')).toBe('2cfef7627597e00b564975774ad728ef210706759fca6d64138c6dfc1cbf2cda');
    expect(hex(inclusionProof(l, 2))).toEqual([n01]);
    expect(hex(inclusionProof(l, 0))).toEqual([hex(l)[1], hex(l)[2]]);
    expect(hex(consistencyProof(l, 2))).toEqual([hex(l)[2]]);
  });

  it('splits at the largest power of two below n', () => {
    expect([2, 3, 4, 5, 8, 9, 1025].map(splitPoint)).toEqual([1, 2, 2, 4, 4, 8, 1024]);
    expect(() => splitPoint(1)).toThrow(RangeError);
  });
});

describe('roots and inclusion proofs', () => {
  const sizes = [...Array.from({ length: 64 }, (_, i) => i + 1), ...[0, 1, 2, 3].map((s) => 100 + Math.floor(rng(s + 9)() * 3000))];

  it.each(sizes)('n=%i: root and every audit path match the RFC reference and merkletreejs', (n) => {
    const leaves = leavesOf(n);
    const root = merkleRoot(leaves);
    const tree = libTree(leaves);
    expect(root).toEqual(mth(leaves));
    expect(root).toEqual(tree.getRoot());
    const indices = n <= 64 ? leaves.map((_, i) => i) : Array.from({ length: 40 }, (_, i) => Math.floor((i * n) / 40)).concat(n - 1);
    for (const i of indices) {
      const proof = inclusionProof(leaves, i);
      if (n <= 300) expect(hex(proof)).toEqual(hex(path(i, leaves)));
      expect(hex(proof)).toEqual(tree.getProof(leaves[i]!, i).map((p) => p.data.toString('hex')));
      expect(verifyInclusion(leaves[i]!, i, n, proof, root)).toBe(true);
    }
  });

  it('empty tree: our root is SHA-256("") where merkletreejs gives an empty buffer', () => {
    expect(merkleRoot([])).toEqual(EMPTY_ROOT);
    expect(libTree([]).getRoot().length).toBe(0);
  });

  it('rejects tampered inclusion proofs', () => {
    const leaves = leavesOf(13);
    const root = merkleRoot(leaves);
    const proof = inclusionProof(leaves, 6);
    expect(verifyInclusion(leaves[6]!, 6, 13, proof, root)).toBe(true);
    expect(verifyInclusion(leaves[7]!, 6, 13, proof, root)).toBe(false);
    expect(verifyInclusion(leaves[6]!, 7, 13, proof, root)).toBe(false);
    // (A size with the same path shape, e.g. 12 or 14, verifies too: the size is authenticated by the signed head.)
    expect(verifyInclusion(leaves[6]!, 6, 7, proof, root)).toBe(false);
    expect(verifyInclusion(leaves[6]!, 13, 13, proof, root)).toBe(false);
    expect(verifyInclusion(leaves[6]!, 6, 13, proof.slice(1), root)).toBe(false);
    expect(verifyInclusion(leaves[6]!, 6, 13, [...proof, leaves[0]!], root)).toBe(false);
    const flipped = proof.map((p) => Buffer.from(p));
    flipped[1]![0]! ^= 1;
    expect(verifyInclusion(leaves[6]!, 6, 13, flipped, root)).toBe(false);
    expect(verifyInclusion(leaves[6]!, 6, 13, [Buffer.alloc(31)], root)).toBe(false);
    expect(verifyInclusion(leaves[0]!, 0, 1, [], leaves[0]!)).toBe(true);
  });
});

describe('consistency proofs', () => {
  it('all 1 ≤ m ≤ n ≤ 64 match SUBPROOF, verify, and fail when tampered', () => {
    const leaves = leavesOf(64, 4242);
    const roots = Array.from({ length: 65 }, (_, n) => merkleRoot(leaves.slice(0, n)));
    for (let n = 1; n <= 64; n++) {
      const prefix = leaves.slice(0, n);
      for (let m = 1; m <= n; m++) {
        const proof = consistencyProof(prefix, m);
        expect(hex(proof)).toEqual(hex(proofRef(m, prefix)));
        expect(verifyConsistency(m, n, roots[m]!, roots[n]!, proof)).toBe(true);
        if (m === n) {
          expect(verifyConsistency(m, n, roots[m]!, roots[n - 1]!, proof)).toBe(m === n - 1 ? true : n === 1 ? roots[0]!.equals(roots[1]!) : false);
          continue;
        }
        expect(verifyConsistency(m, n, roots[m - 1]!, roots[n]!, proof)).toBe(false);
        expect(verifyConsistency(m, n, roots[m]!, roots[n - 1]!, proof)).toBe(false);
        if (n < 64) expect(verifyConsistency(m, n + 1, roots[m]!, roots[n + 1]!, proof)).toBe(false);
        for (let j = 0; j < proof.length; j++) {
          const bad = proof.map((p) => Buffer.from(p));
          bad[j]![31]! ^= 0x80;
          expect(verifyConsistency(m, n, roots[m]!, roots[n]!, bad)).toBe(false);
        }
        expect(verifyConsistency(m, n, roots[m]!, roots[n]!, proof.slice(0, -1))).toBe(false);
        expect(verifyConsistency(m, n, roots[m]!, roots[n]!, [...proof, roots[0]!])).toBe(false);
      }
    }
  });

  it('handles the edge sizes the RFC leaves to callers', () => {
    const leaves = leavesOf(5);
    const root = merkleRoot(leaves);
    expect(consistencyProof(leaves, 0)).toEqual([]);
    expect(verifyConsistency(0, 5, EMPTY_ROOT, root, [])).toBe(true);
    expect(verifyConsistency(0, 5, root, root, [])).toBe(false);
    expect(verifyConsistency(5, 5, root, root, [])).toBe(true);
    expect(verifyConsistency(5, 5, root, EMPTY_ROOT, [])).toBe(false);
    expect(verifyConsistency(5, 4, root, root, [])).toBe(false);
    expect(verifyConsistency(3, 5, merkleRoot(leaves.slice(0, 3)), root, [])).toBe(false);
    expect(() => consistencyProof(leaves, 6)).toThrow(RangeError);
  });

  it('random pairs up to a few thousand leaves', () => {
    const leaves = leavesOf(3000, 77);
    const log = new MerkleLog({ cacheFromLevel: 3 });
    for (const l of leaves) log.append(l);
    const r = rng(5);
    for (let t = 0; t < 30; t++) {
      const n = 1 + Math.floor(r() * 3000);
      const m = 1 + Math.floor(r() * n);
      const proof = log.consistencyProof(m, n);
      expect(hex(proof)).toEqual(hex(consistencyProof(leaves.slice(0, n), m)));
      expect(verifyConsistency(m, n, log.rootAt(m), log.rootAt(n), proof)).toBe(true);
    }
  });
});

describe('MerkleFrontier', () => {
  it('root equals merkleRoot at every size, and survives a JSON round trip', () => {
    const leaves = leavesOf(600, 3);
    const f = createMerkleFrontier();
    expect(f.root()).toEqual(EMPTY_ROOT);
    for (let i = 0; i < leaves.length; i++) {
      f.append(leaves[i]!);
      expect(f.size).toBe(i + 1);
      expect(f.root()).toEqual(mth(leaves.slice(0, i + 1)));
      if (i % 97 === 0) {
        const restored = createMerkleFrontier(JSON.parse(JSON.stringify(f)));
        expect(restored.root()).toEqual(f.root());
        restored.append(leaves[0]!);
        expect(restored.root()).toEqual(merkleRoot([...leaves.slice(0, i + 1), leaves[0]!]));
      }
    }
  });

  it('is not affected by later writes to an appended buffer', () => {
    const f = new MerkleFrontier();
    const leaf = Buffer.from(leafHash(Buffer.from('x')));
    f.append(leaf);
    leaf.fill(0);
    expect(f.root()).toEqual(leafHash(Buffer.from('x')));
  });

  it('rejects malformed state', () => {
    expect(() => MerkleFrontier.fromState({ size: 3, nodes: ['00'.repeat(32)] })).toThrow(RangeError);
    expect(() => MerkleFrontier.fromState({ size: 1, nodes: ['zz'.repeat(32)] })).toThrow(RangeError);
  });
});

describe('MerkleLog', () => {
  it.each([1, 2, 8])('proofs from cached subtrees (cacheFromLevel=%i) equal the pure functions', (cacheFromLevel) => {
    const leaves = leavesOf(1500, 11);
    const log = new MerkleLog({ cacheFromLevel, capacity: 4 });
    const r = rng(cacheFromLevel);
    for (let n = 1; n <= leaves.length; n++) {
      log.append(leaves[n - 1]!);
      if (n <= 70 || n % 137 === 0) {
        expect(log.root()).toEqual(subtreeRoot(leaves, 0, n));
        const size = 1 + Math.floor(r() * n);
        const index = Math.floor(r() * size);
        expect(log.rootAt(size)).toEqual(merkleRoot(leaves.slice(0, size)));
        const proof = log.inclusionProof(index, size);
        expect(hex(proof)).toEqual(hex(inclusionProof(leaves, index, size)));
        expect(verifyInclusion(leaves[index]!, index, size, proof, log.rootAt(size))).toBe(true);
      }
    }
    expect(log.at(1499)).toEqual(leaves[1499]);
    expect(log.at(1500)).toBeUndefined();
  });
});

describe('MerkleLog.restore (a tree exported with its leaves, restored without hashing)', () => {
  const leaf = (i: number) => leafHash(Buffer.from(`leaf ${i}`));
  const build = (n: number) => {
    const log = new MerkleLog({ capacity: 4 });
    for (let i = 0; i < n; i++) log.append(leaf(i));
    return log;
  };

  it('answers every root and proof like the original, and goes on growing identically', () => {
    for (const n of [0, 1, 15, 16, 17, 100, 1023, 1024, 1500]) {
      const original = build(n);
      const { tree, leaves } = original.exportTree();
      const restored = MerkleLog.restore(Buffer.from(leaves), tree);
      // The export is a view that later appends do not change.
      original.append(leaf(n));
      expect(tree.size).toBe(n);
      expect(leaves.length).toBe(n * HASH_SIZE);
      restored.append(leaf(n));
      for (let k = n + 1; k < n + 40; k++) {
        original.append(leaf(k));
        restored.append(leaf(k));
      }
      const fresh = build(n + 40);
      expect(restored.root()).toEqual(fresh.root());
      for (const size of [1, Math.floor(n / 2) + 1, n + 1, n + 40]) {
        expect(restored.rootAt(size)).toEqual(fresh.rootAt(size));
        expect(restored.inclusionProof(size - 1, size)).toEqual(fresh.inclusionProof(size - 1, size));
        expect(restored.consistencyProof(Math.ceil(size / 3), size)).toEqual(fresh.consistencyProof(Math.ceil(size / 3), size));
      }
      expect(restored.exportTree()).toEqual(fresh.exportTree());
    }
  });

  it('refuses a tree that does not fit its leaves', () => {
    const { tree, leaves } = build(100).exportTree();
    expect(() => MerkleLog.restore(leaves.subarray(32), tree)).toThrow(RangeError);
    expect(() => MerkleLog.restore(leaves.subarray(1), tree)).toThrow(RangeError);
    expect(() => MerkleLog.restore(leaves, { ...tree, levels: tree.levels.map((l) => l && l.subarray(32)) })).toThrow(RangeError);
    expect(() => MerkleLog.restore(leaves, { ...tree, levels: [...tree.levels, new Uint8Array(32)] })).toThrow(RangeError);
    expect(() => MerkleLog.restore(leaves, { ...tree, frontier: { size: 100, nodes: tree.frontier.nodes.slice(1) } })).toThrow(RangeError);
  });
});

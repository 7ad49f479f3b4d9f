import { describe, expect, it } from 'vitest';
import { keyPairFromSeed } from '../../protocol/keys.js';
import { MerkleLog, leafHash } from '../../protocol/merkle.js';
import { formatCheckpoint } from '../../protocol/checkpoint.js';
import { signCosignature } from '../../protocol/cosignature.js';
import { makeCheckpointNote } from '../../protocol/ledger-checkpoints.js';
import { toHex } from '../../protocol/hex.js';
import { createWitnessBook } from './witnesses.js';

const center = keyPairFromSeed(Buffer.alloc(32, 1));
const nodes = { a: keyPairFromSeed(Buffer.alloc(32, 2)), b: keyPairFromSeed(Buffer.alloc(32, 3)) };
const log = new MerkleLog();
for (let i = 0; i < 12; i++) log.append(leafHash(Buffer.from(`line ${i}`)));
let size = 8;
const origin = 'cc.example.com/vaultmesh/scans';
const checkpoint = { origin, note: () => makeCheckpointNote('cc.example.com/vaultmesh', 'scans', { tree_size: size, root_hash: toHex(log.rootAt(size)) }, center), treeSize: () => size };
const tree = { hashRange: (s: number, e: number) => log.hashRange(s, e), consistencyProof: (o: number, n: number) => log.consistencyProof(o, n) };
const revoked = new Set<string>();
const book = createWitnessBook({
  ledgers: { scans: tree, commands: tree },
  checkpoints: { scans: checkpoint, commands: checkpoint },
  nodeKey: (id) => (id in nodes && !revoked.has(id) ? nodes[id as 'a'].publicKeyHex : undefined),
  keep: 1,
  now: () => new Date(1_700_000_000_000),
});
const text = (n: number) => formatCheckpoint({ origin, treeSize: n, rootHash: log.rootAt(n), extensions: [] });
const cosig = (id: 'a' | 'b', n: number, t = 1_700_000_000) => signCosignature(text(n), { name: `nodes.vaultmesh/${id}`, seed: nodes[id].seed }, t);

describe('the center\'s witness book', () => {
  it('keeps cosignatures that verify on its own checkpoint of that size, and appends the newest of the current tree', () => {
    expect(book.accept('a', 'scans', { tree_size: 8, cosignature: cosig('a', 8) })).toBeUndefined();
    expect(book.accept('b', 'scans', { tree_size: 8, cosignature: cosig('b', 8, 1_700_000_001) })).toBeUndefined();
    const served = book.cosignedNote('scans')!;
    expect(served).toBe(checkpoint.note() + cosig('b', 8, 1_700_000_001)); // keep = 1: the newest
    expect(book.status('scans')).toMatchObject({ tree_size: 8, witnessed_latest: 2 });
    size = 12;
    expect(book.cosignedNote('scans')).toBe(checkpoint.note()); // nobody witnessed 12 yet
    expect(book.status('scans').witnessed_latest).toBe(0);
    expect(book.offer('scans', 8).proof).toEqual(log.consistencyProof(8, 12).map(toHex));
    expect(book.offer('scans', 20).proof).toEqual([]);
    size = 8;
  });

  it('serves a newer cosignature once it arrives, and drops a revoked node\'s', () => {
    const first = book.cosignedNote('scans');
    expect(book.accept('a', 'scans', { tree_size: 8, cosignature: cosig('a', 8, 1_700_000_005) })).toBeUndefined();
    expect(book.cosignedNote('scans')).not.toBe(first);
    expect(book.cosignedNote('scans')).toBe(checkpoint.note() + cosig('a', 8, 1_700_000_005));
    revoked.add('a');
    expect(book.accept('a', 'scans', { tree_size: 8, cosignature: cosig('a', 8, 1_700_000_005) })).toMatch(/not approved/);
    expect(book.cosignedNote('scans')).toBe(checkpoint.note() + cosig('b', 8, 1_700_000_001));
    revoked.delete('a');
  });

  it.each([
    ['another node\'s key', () => book.accept('a', 'scans', { tree_size: 8, cosignature: cosig('b', 8).replace('/b ', '/a ') })],
    ['a size beyond the checkpoint', () => book.accept('a', 'scans', { tree_size: 9, cosignature: cosig('a', 9) })],
    ['a cosignature on another size', () => book.accept('a', 'scans', { tree_size: 7, cosignature: cosig('a', 8) })],
    ['a timestamp far in the future', () => book.accept('a', 'scans', { tree_size: 8, cosignature: cosig('a', 8, 1_700_100_000) })],
    ['an unknown node', () => book.accept('zz', 'scans', { tree_size: 8, cosignature: cosig('a', 8) })],
    ['garbage', () => book.accept('a', 'scans', { tree_size: 8, cosignature: 'hello' })],
  ])('refuses %s', (_, run) => {
    expect(run()).toEqual(expect.any(String));
  });
});

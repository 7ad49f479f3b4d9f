import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { keyPairFromSeed } from '../protocol/keys.js';
import { MerkleLog, leafHash } from '../protocol/merkle.js';
import { makeCheckpointNote } from '../protocol/ledger-checkpoints.js';
import { toHex } from '../protocol/hex.js';
import { tempDir } from '../test/helpers.js';
import { createLedgerWitness } from './ledger-witness.js';

const center = keyPairFromSeed(Buffer.alloc(32, 1));
const node = keyPairFromSeed(Buffer.alloc(32, 2));
const log = new MerkleLog();
for (let i = 0; i < 30; i++) log.append(leafHash(Buffer.from(`line ${i}`)));
const note = (size: number, key = center) => makeCheckpointNote('cc.example.com/vaultmesh', 'scans', { tree_size: size, root_hash: toHex(log.rootAt(size)) }, key);
const offer = (size: number, from: number, key = center) => ({ scans: { checkpoint: note(size, key), from_size: from, proof: log.consistencyProof(from, size).map(toHex) } });

const dirs: (() => void)[] = [];
afterEach(() => dirs.splice(0).forEach((f) => f()));
function witness() {
  const t = tempDir();
  dirs.push(t.cleanup);
  const logs: string[] = [];
  const w = createLedgerWitness({ stateDir: t.dir, nodeId: 'web-01', key: node, log: (m) => logs.push(m), now: () => new Date(1_700_000_000_000) });
  return { w, logs, dir: t.dir };
}

describe('the agent as a witness', () => {
  it('accepts a first checkpoint and growth with a proof, cosigning each; stores them 0600', () => {
    const { w, dir } = witness();
    expect(w.report()).toBeUndefined();
    w.observe(offer(10, 0), [center.publicKeyHex]);
    expect(w.report()!.scans).toMatchObject({ tree_size: 10, cosignature: expect.stringMatching(/^— nodes\.vaultmesh\/web-01 /) });
    w.observe(offer(30, 10), [center.publicKeyHex]);
    expect(w.report()!.scans!.tree_size).toBe(30);
    expect(statSync(join(dir, 'ledger-witness.json')).mode & 0o777).toBe(0o600);
    expect(JSON.parse(readFileSync(join(dir, 'ledger-witness.json'), 'utf8')).scans.accepted.checkpoint).toBe(note(30));
  });

  it('ignores a checkpoint not signed by the center key, and an answer to an older report', () => {
    const { w, logs } = witness();
    w.observe(offer(10, 0, keyPairFromSeed(Buffer.alloc(32, 9))), [center.publicKeyHex]);
    expect(w.report()).toBeUndefined();
    expect(logs[0]).toMatch(/not signed by its key/);
    w.observe(offer(10, 0), [center.publicKeyHex]);
    w.observe(offer(30, 5), [center.publicKeyHex]); // proof from 5, but 10 was accepted: not for us
    expect(w.report()!.scans!.tree_size).toBe(10);
  });

  it('stops witnessing, loudly, on a damaged state file instead of starting over', () => {
    const t = tempDir();
    dirs.push(t.cleanup);
    writeFileSync(join(t.dir, 'ledger-witness.json'), '{"scans": {"accepted": 12}}');
    const logs: string[] = [];
    const w = createLedgerWitness({ stateDir: t.dir, nodeId: 'web-01', key: node, log: (m) => logs.push(m) });
    expect(logs[0]).toMatch(/^ERROR: .*ledger-witness\.json is unreadable/);
    w.observe(offer(10, 0), [center.publicKeyHex]);
    expect(w.report()).toBeUndefined();
    expect(readFileSync(join(t.dir, 'ledger-witness.json'), 'utf8')).toBe('{"scans": {"accepted": 12}}');
  });

  it('reports a smaller tree as a fork and keeps its checkpoint and cosignature', () => {
    const { w, logs } = witness();
    w.observe(offer(30, 0), [center.publicKeyHex]);
    const before = w.report()!.scans!;
    w.observe({ scans: { checkpoint: note(10), from_size: 30, proof: [] } }, [center.publicKeyHex]);
    expect(w.report()!.scans).toEqual({ ...before, fork: { reason: 'smaller', message: expect.any(String), seen_size: 10 } });
    expect(logs.at(-1)).toMatch(/^LEDGER FORK \(scans\)/);
    // The center comes back with a tree that extends the accepted one: the report clears.
    w.observe(offer(30, 30), [center.publicKeyHex]);
    expect(w.report()!.scans).toEqual(before);
  });
});

import { describe, expect, it } from 'vitest';
import { COSIGNATURE_V1_HEADER, cosignatureTimestamp, cosignedMessage, formatCosignerKey, signCosignature, verifyCosignature } from './cosignature.js';
import { keyPairFromSeed } from './keys.js';
import { MerkleLog, leafHash } from './merkle.js';
import { parseNote, parseVerifierKey } from './signed-note.js';
import { checkExtends } from './witness-check.js';

// The example of c2sp.org/tlog-cosignature (the witness key is not published).
const SPEC_TEXT = 'example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n';
const SPEC_COSIG = '— witness.example.com/w1 jWbPPwAAAABkGFDLEZMHwSRaJNiIDoe9DYn/zXcrtPHeolMI5OWXEhZCB9dlrDJsX3b2oyin1nPZqhf5nNo0xUe+mbIUBkBIfZ+qnA==\n';

describe('cosignature/v1 (c2sp.org/tlog-cosignature)', () => {
  it('builds the signed message of the spec example byte-exact and reads its timestamp', () => {
    expect(cosignedMessage(SPEC_TEXT, 1679315147).toString()).toBe(`${COSIGNATURE_V1_HEADER}\ntime 1679315147\n${SPEC_TEXT}`);
    const sig = parseNote(`${SPEC_TEXT}\n${SPEC_COSIG}`).signatures[0]!;
    expect(sig.name).toBe('witness.example.com/w1');
    expect(cosignatureTimestamp(sig)).toBe(1679315147);
  });

  it('signs and verifies; refuses another text, another key, a future time', () => {
    const w = keyPairFromSeed(Buffer.alloc(32, 4));
    const name = 'cc.example.com/vaultmesh/nodes/web-01';
    const line = signCosignature(SPEC_TEXT, { name, seed: w.seed }, 1_700_000_000);
    const sig = parseNote(`${SPEC_TEXT}\n${line}`).signatures[0]!;
    expect(sig.signature).toHaveLength(72);
    expect(verifyCosignature(SPEC_TEXT, sig, { name, publicKey: w.publicKey })).toBe(1_700_000_000);
    expect(verifyCosignature(SPEC_TEXT.replace('20852163', '20852164'), sig, { name, publicKey: w.publicKey })).toBeUndefined();
    expect(verifyCosignature(SPEC_TEXT, sig, { name, publicKey: keyPairFromSeed(Buffer.alloc(32, 5)).publicKey })).toBeUndefined();
    expect(verifyCosignature(SPEC_TEXT, sig, { name, publicKey: w.publicKey }, { notAfter: 1_699_999_999 })).toBeUndefined();
    const vkey = parseVerifierKey(formatCosignerKey(name, w.publicKey));
    expect(vkey).toMatchObject({ name, type: 0x04, keyId: sig.keyId });
  });
});

describe('witness check', () => {
  const log = new MerkleLog();
  for (let i = 0; i < 20; i++) log.append(leafHash(Buffer.from(`l${i}`)));
  const view = (n: number) => ({ treeSize: n, rootHash: log.rootAt(n) });

  it('accepts a tree that extends the accepted one, and the same tree again', () => {
    expect(checkExtends(view(7), view(20), log.consistencyProof(7, 20))).toEqual({ ok: true, grew: true });
    expect(checkExtends(undefined, view(20), [])).toEqual({ ok: true, grew: true });
    expect(checkExtends(view(20), view(20), [])).toEqual({ ok: true, grew: false });
  });

  it('calls a smaller tree, another root at the same size, or a failing proof a fork', () => {
    const forked = new MerkleLog();
    for (let i = 0; i < 20; i++) forked.append(leafHash(Buffer.from(i === 3 ? 'rewritten' : `l${i}`)));
    expect(checkExtends(view(20), view(7), [])).toMatchObject({ ok: false, reason: 'smaller' });
    expect(checkExtends(view(20), { treeSize: 20, rootHash: forked.root() }, [])).toMatchObject({ ok: false, reason: 'different-root' });
    expect(checkExtends(view(7), { treeSize: 20, rootHash: forked.root() }, forked.consistencyProof(7, 20))).toMatchObject({ ok: false, reason: 'bad-proof' });
  });
});

import { describe, expect, it } from 'vitest';
import { formatCheckpoint, openCheckpoint, parseCheckpointText, signCheckpoint } from './checkpoint.js';
import { ed25519NoteSigner, ed25519NoteVerifier, formatVerifierKey, parseNote } from './signed-note.js';
import { keyPairFromSeed } from './keys.js';

// The example of c2sp.org/tlog-checkpoint and c2sp.org/tlog-cosignature (the keys are not published).
const SPEC_TEXT = 'example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n';
const SPEC_COSIGNED =
  SPEC_TEXT +
  '\n— example.com/behind-the-sofa Az3grlgtzPICa5OS8npVmf1Myq/5IZniMp+ZJurmRDeOoRDe4URYN7u5/Zhcyv2q1gGzGku9nTo+zyWE+xeMcTOAYQ8=\n' +
  '— witness.example.com/w1 jWbPPwAAAABkGFDLEZMHwSRaJNiIDoe9DYn/zXcrtPHeolMI5OWXEhZCB9dlrDJsX3b2oyin1nPZqhf5nNo0xUe+mbIUBkBIfZ+qnA==\n';

describe('checkpoints (c2sp.org/tlog-checkpoint)', () => {
  it('parses the spec example and formats it back byte-exact', () => {
    const cp = parseCheckpointText(SPEC_TEXT);
    expect(cp).toMatchObject({ origin: 'example.com/behind-the-sofa', treeSize: 20852163, extensions: [] });
    expect(formatCheckpoint(cp)).toBe(SPEC_TEXT);
    const note = parseNote(SPEC_COSIGNED);
    expect(note.text).toBe(SPEC_TEXT);
    expect(note.signatures.map((s) => [s.name, s.signature.length])).toEqual([
      ['example.com/behind-the-sofa', 64],
      ['witness.example.com/w1', 72], // timestamped cosignature: u64 time ‖ 64-byte signature
    ]);
  });

  it('signs and opens a checkpoint whose key name is its origin', () => {
    const key = keyPairFromSeed(Buffer.alloc(32, 1));
    const origin = 'cc.example.com/vaultmesh/scans';
    const note = signCheckpoint({ origin, treeSize: 3, rootHash: Buffer.alloc(32, 0xab), extensions: [] }, ed25519NoteSigner(origin, key.seed));
    expect(note.startsWith(`${origin}\n3\n${Buffer.alloc(32, 0xab).toString('base64')}\n\n— ${origin} `)).toBe(true);
    const opened = openCheckpoint(note, [ed25519NoteVerifier(formatVerifierKey(origin, key.publicKey))], origin);
    expect(opened.checkpoint.treeSize).toBe(3);
    expect(() => openCheckpoint(note, [ed25519NoteVerifier(formatVerifierKey(origin, key.publicKey))], 'other/origin')).toThrow(/origin/);
  });

  it.each([
    ['two lines', 'o\n1\n'],
    ['leading zero', 'o\n01\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n'],
    ['short root', 'o\n1\nAAAA\n'],
    ['empty extension', 'o\n1\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n\n'],
    ['empty origin', '\n1\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n'],
  ])('refuses checkpoint text: %s', (_, text) => {
    expect(() => parseCheckpointText(text)).toThrow();
  });
});

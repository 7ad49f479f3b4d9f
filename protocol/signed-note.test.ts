import { describe, expect, it } from 'vitest';
import {
  NoteError,
  decodeBase64,
  ed25519NoteSigner,
  ed25519NoteVerifier,
  formatVerifierKey,
  noteKeyId,
  openNote,
  parseNote,
  parseVerifierKey,
  signNote,
} from './signed-note.js';
import { keyPairFromSeed } from './keys.js';

// The vector of golang.org/x/mod/sumdb/note (note_test.go): a private key, its verifier key and the signed note.
const PETER_SKEY_KEY = 'AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz'; // base64(0x01 ‖ seed)
const PETER_VKEY = 'PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW';
const PETER_TEXT = 'If you think cryptography is the answer to your problem,\nthen you don\'t know what your problem is.\n';
const PETER_NOTE =
  PETER_TEXT +
  '\n— PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n';
const peterSeed = Buffer.from(PETER_SKEY_KEY, 'base64').subarray(1);

// The example of c2sp.org/signed-note (its key is not published: parse only).
const QUASIMODO_NOTE =
  'Ognuno sta solo sul cuor della terra\ntrafitto da un raggio di sole:\n\ned è subito sera.\n\n' +
  '— quasimodo.example/salvatore NnugSzTjtVAewIS+Z/iJhUPeFDkO/5QQ2i5ddnGITLlC+EhfLW9oJKONrMouFSQU0xMcXxj99ihAQwaqP3ZekRwNtIc=\n';

describe('signed notes (c2sp.org/signed-note)', () => {
  it('computes verifier keys byte-exact (Go note vector)', () => {
    const pub = keyPairFromSeed(peterSeed).publicKey;
    expect(formatVerifierKey('PeterNeumann', pub)).toBe(PETER_VKEY);
    expect(noteKeyId('PeterNeumann', 0x01, pub)).toBe(0xc74f20a3);
    const parsed = parseVerifierKey(PETER_VKEY);
    expect(parsed).toMatchObject({ name: 'PeterNeumann', keyId: 0xc74f20a3, type: 1 });
    expect(Buffer.compare(parsed.publicKey, pub)).toBe(0);
  });

  it('signs byte-exact (Go note vector) and opens the result', () => {
    const signer = ed25519NoteSigner('PeterNeumann', peterSeed);
    expect(signNote(PETER_TEXT, [signer])).toBe(PETER_NOTE);
    const opened = openNote(PETER_NOTE, [ed25519NoteVerifier(PETER_VKEY)]);
    expect(opened.text).toBe(PETER_TEXT);
    expect(opened.verified.map((s) => s.name)).toEqual(['PeterNeumann']);
  });

  it('parses the spec example: the text is up to the last blank line, so it may hold empty lines', () => {
    const n = parseNote(QUASIMODO_NOTE);
    expect(n.text).toBe('Ognuno sta solo sul cuor della terra\ntrafitto da un raggio di sole:\n\ned è subito sera.\n');
    expect(n.signatures).toHaveLength(1);
    expect(n.signatures[0]!.name).toBe('quasimodo.example/salvatore');
    expect(n.signatures[0]!.signature).toHaveLength(64);
  });

  it('ignores unknown keys, rejects a bad signature from a known key, and a note without a known signature', () => {
    const other = ed25519NoteSigner('example.com/other', Buffer.alloc(32, 7));
    const both = signNote(PETER_TEXT, [ed25519NoteSigner('PeterNeumann', peterSeed), other]);
    const opened = openNote(both, [ed25519NoteVerifier(PETER_VKEY)]);
    expect(opened.unverified.map((s) => s.name)).toEqual(['example.com/other']);
    // Same name and key ID, wrong bytes: must fail, not be skipped.
    const tampered = PETER_NOTE.replace("don't", 'do');
    expect(() => openNote(tampered, [ed25519NoteVerifier(PETER_VKEY)])).toThrow(expect.objectContaining({ code: 'BAD_SIGNATURE' }));
    // Same name, other key ID: an unknown key, so the note has no known signature.
    const sameName = signNote(PETER_TEXT, [ed25519NoteSigner('PeterNeumann', Buffer.alloc(32, 9))]);
    expect(() => openNote(sameName, [ed25519NoteVerifier(PETER_VKEY)])).toThrow(expect.objectContaining({ code: 'UNVERIFIED' }));
  });

  it.each([
    ['no blank line', 'hello\n— PeterNeumann AAAAAAA=\n'],
    ['no final newline', 'hello\n\n— PeterNeumann x08go/ZJkuBS9U'],
    ['control character', 'he\tllo\n\n— PeterNeumann x08go/ZJ\n'],
    ['signature line without em dash', 'hello\n\n- PeterNeumann x08go/ZJkuBS9U\n'],
    ['non-base64 signature', 'hello\n\n— PeterNeumann !!!!\n'],
    ['signature shorter than a key ID', 'hello\n\n— PeterNeumann AAAA\n'],
  ])('refuses a malformed note: %s', (_, note) => {
    expect(() => parseNote(note)).toThrow(NoteError);
  });

  it.each([
    ['plus in name', 'a+b+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW'],
    ['wrong key id', 'PeterNeumann+c74f20a4+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW'],
    ['short key', 'PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10'],
    ['no key id', 'PeterNeumann+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW'],
  ])('refuses a malformed verifier key: %s', (_, vkey) => {
    expect(() => parseVerifierKey(vkey)).toThrow(NoteError);
  });

  it('decodes only strict padded base64', () => {
    expect(decodeBase64('AAAA')).toHaveLength(3);
    expect(decodeBase64('AAA')).toBeUndefined();
    expect(decodeBase64('AA-_')).toBeUndefined();
  });
});

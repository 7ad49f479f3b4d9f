/**
 * C2SP signed notes (c2sp.org/signed-note) with Ed25519 signatures: text ending in a newline, a blank line, then one
 * line per signature, `— <key name> base64(key ID ‖ signature)`. Key names carry no spaces and no `+`; the key ID is
 * the first 4 bytes of SHA-256(key name ‖ 0x0A ‖ signature type ‖ public key). Verifier keys use the `vkey` text
 * form read by Go's golang.org/x/mod/sumdb/note: `<name>+<8 hex key ID>+<base64(type ‖ public key)>`.
 *
 * Pure (no IO), usable by third parties. Signature type 0x01 (Ed25519 over the note text) is implemented here; the
 * witness cosignature type 0x04 only shares the key ID rule (`noteKeyId`) and the line format.
 */
import { createHash } from 'node:crypto';
import { nodeCryptoBackend, type Ed25519Backend } from './ed25519.js';

/** Signature type byte of plain Ed25519 note signatures. */
export const SIG_TYPE_ED25519 = 0x01;
/** Signature type byte of timestamped Ed25519 witness cosignatures (c2sp.org/tlog-cosignature). */
export const SIG_TYPE_COSIGNATURE_V1 = 0x04;

/** Verifiers must accept at least 16 signatures; beyond this many a note is refused (bounds the work per note). */
export const MAX_NOTE_SIGNATURES = 100;

const EM_DASH_PREFIX = '\u2014 ';

/** A problem with a note, a key or a signature; `code` names it for callers that map it to their own errors. */
export class NoteError extends Error {
  constructor(
    readonly code: 'MALFORMED_NOTE' | 'MALFORMED_KEY' | 'UNVERIFIED' | 'BAD_SIGNATURE',
    message: string,
  ) {
    super(message);
    this.name = 'NoteError';
  }
}

/** True if `name` is a valid key name: non-empty, printable, no Unicode space and no `+`. */
export function isValidKeyName(name: string): boolean {
  // \s covers the Unicode spaces; \p{Cc} the control characters (none may appear anywhere in a note).
  return name.length > 0 && !/[\s+\p{Cc}]/u.test(name) && isWellFormedUtf16(name);
}

function isWellFormedUtf16(s: string): boolean {
  return !/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/.test(s);
}

/** The 32-bit key ID: the first 4 bytes, big-endian, of SHA-256(name ‖ 0x0A ‖ type ‖ public key). */
export function noteKeyId(name: string, type: number, publicKey: Uint8Array): number {
  const h = createHash('sha256').update(name, 'utf8').update(Buffer.from([0x0a, type])).update(publicKey).digest();
  return h.readUInt32BE(0);
}

/** `<name>+<8 hex key ID>+<base64(0x01 ‖ key)>` for an Ed25519 public key (or another type's key material). */
export function formatVerifierKey(name: string, publicKey: Uint8Array, type: number = SIG_TYPE_ED25519): string {
  if (!isValidKeyName(name)) throw new NoteError('MALFORMED_KEY', `invalid key name ${JSON.stringify(name)}`);
  const id = noteKeyId(name, type, publicKey).toString(16).padStart(8, '0');
  return `${name}+${id}+${Buffer.concat([Buffer.from([type]), publicKey]).toString('base64')}`;
}

export interface VerifierKey {
  name: string;
  keyId: number;
  type: number;
  publicKey: Buffer;
}

const STD_BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** Strict standard base64 (RFC 4648 §4, padded); undefined for anything else. */
export function decodeBase64(s: string): Buffer | undefined {
  return STD_BASE64.test(s) ? Buffer.from(s, 'base64') : undefined;
}

/**
 * Parses a verifier key. Ed25519 (0x01) and cosignature (0x04) keys must hold exactly 32 bytes of key, and the key ID
 * must be the one computed from name, type and key; throws NoteError MALFORMED_KEY otherwise.
 */
export function parseVerifierKey(vkey: string): VerifierKey {
  const m = /^([^+]+)\+([0-9a-f]{8})\+([A-Za-z0-9+/=]+)$/.exec(vkey.trim());
  if (!m || !isValidKeyName(m[1]!)) throw new NoteError('MALFORMED_KEY', 'a verifier key is <name>+<8 hex key id>+<base64 key>');
  const raw = decodeBase64(m[3]!);
  if (!raw || raw.length < 2) throw new NoteError('MALFORMED_KEY', 'the key part of a verifier key is not base64');
  const type = raw[0]!;
  const publicKey = raw.subarray(1);
  if ((type === SIG_TYPE_ED25519 || type === SIG_TYPE_COSIGNATURE_V1) && publicKey.length !== 32) {
    throw new NoteError('MALFORMED_KEY', `an Ed25519 verifier key holds 32 bytes, not ${publicKey.length}`);
  }
  const keyId = Number.parseInt(m[2]!, 16);
  if (noteKeyId(m[1]!, type, publicKey) !== keyId) throw new NoteError('MALFORMED_KEY', `key ID ${m[2]} does not match the name and key`);
  return { name: m[1]!, keyId, type, publicKey: Buffer.from(publicKey) };
}

export interface NoteSignature {
  name: string;
  keyId: number;
  /** The base64 field as it appears on the line (key ID ‖ signature bytes). */
  base64: string;
  /** The signature bytes after the key ID. */
  signature: Buffer;
}

export interface ParsedNote {
  /** The note text, final newline included. */
  text: string;
  signatures: NoteSignature[];
}

/** The text of one signature line (with its newline). */
export function formatSignatureLine(name: string, keyId: number, signature: Uint8Array): string {
  const id = Buffer.alloc(4);
  id.writeUInt32BE(keyId >>> 0);
  return `${EM_DASH_PREFIX}${name} ${Buffer.concat([id, signature]).toString('base64')}\n`;
}

/** Checks a note text: valid UTF-8 (as a JS string), no control character but newline, ends in a newline. */
export function assertNoteText(text: string): void {
  if (!text.endsWith('\n')) throw new NoteError('MALFORMED_NOTE', 'note text must end in a newline');
  if (/[\p{Cc}]/u.test(text.replace(/\n/g, '')) || !isWellFormedUtf16(text)) {
    throw new NoteError('MALFORMED_NOTE', 'note text must be UTF-8 without control characters other than newline');
  }
}

/**
 * Splits a signed note into text and signature lines (no verification). The text is everything up to the last
 * blank line; every line after it must be a well-formed signature line. Throws NoteError MALFORMED_NOTE.
 */
export function parseNote(note: string | Uint8Array): ParsedNote {
  let s: string;
  if (typeof note === 'string') s = note;
  else {
    try {
      s = new TextDecoder('utf-8', { fatal: true }).decode(note);
    } catch {
      throw new NoteError('MALFORMED_NOTE', 'a note must be valid UTF-8');
    }
  }
  if (/[\p{Cc}]/u.test(s.replace(/\n/g, '')) || !isWellFormedUtf16(s)) throw new NoteError('MALFORMED_NOTE', 'a note must not contain control characters other than newline');
  const split = s.lastIndexOf('\n\n');
  if (split < 0) throw new NoteError('MALFORMED_NOTE', 'a note needs a blank line between its text and its signatures');
  const text = s.slice(0, split + 1);
  const sigText = s.slice(split + 2);
  if (!sigText.endsWith('\n')) throw new NoteError('MALFORMED_NOTE', 'a note must end with a newline');
  const lines = sigText.slice(0, -1).split('\n');
  if (lines.length > MAX_NOTE_SIGNATURES) throw new NoteError('MALFORMED_NOTE', `a note may carry at most ${MAX_NOTE_SIGNATURES} signatures`);
  const signatures: NoteSignature[] = [];
  for (const line of lines) {
    const m = /^\u2014 (\S+) ([A-Za-z0-9+/=]+)$/.exec(line);
    if (!m || !isValidKeyName(m[1]!)) throw new NoteError('MALFORMED_NOTE', 'malformed signature line');
    const raw = decodeBase64(m[2]!);
    if (!raw || raw.length < 5) throw new NoteError('MALFORMED_NOTE', 'malformed signature line');
    signatures.push({ name: m[1]!, keyId: raw.readUInt32BE(0), base64: m[2]!, signature: Buffer.from(raw.subarray(4)) });
  }
  return { text, signatures };
}

/** A signer of notes: name and key ID say who, `sign` makes the signature bytes over the note text. */
export interface NoteSigner {
  name: string;
  keyId: number;
  sign(message: Uint8Array): Uint8Array;
}

/** A verifier of notes, matched to signature lines by name and key ID. */
export interface NoteVerifier {
  name: string;
  keyId: number;
  verify(message: Uint8Array, signature: Uint8Array): boolean;
}

/** An Ed25519 (type 0x01) signer from a 32-byte seed. */
export function ed25519NoteSigner(name: string, seed: Uint8Array, backend: Ed25519Backend = nodeCryptoBackend): NoteSigner {
  if (!isValidKeyName(name)) throw new NoteError('MALFORMED_KEY', `invalid key name ${JSON.stringify(name)}`);
  const publicKey = backend.publicKey(seed);
  return { name, keyId: noteKeyId(name, SIG_TYPE_ED25519, publicKey), sign: (message) => backend.sign(seed, message) };
}

/** An Ed25519 (type 0x01) verifier from a verifier key string or from name and raw public key. */
export function ed25519NoteVerifier(vkey: string | { name: string; publicKey: Uint8Array }, backend: Ed25519Backend = nodeCryptoBackend): NoteVerifier {
  const k = typeof vkey === 'string' ? parseVerifierKey(vkey) : { ...vkey, type: SIG_TYPE_ED25519, keyId: noteKeyId(vkey.name, SIG_TYPE_ED25519, vkey.publicKey) };
  if (k.type !== SIG_TYPE_ED25519) throw new NoteError('MALFORMED_KEY', `verifier key type 0x${k.type.toString(16).padStart(2, '0')} is not Ed25519 (0x01)`);
  const publicKey = k.publicKey;
  return { name: k.name, keyId: k.keyId, verify: (message, signature) => signature.length === 64 && backend.verify(publicKey, message, signature) };
}

/** Signs `text` (which must end in a newline) with each signer; `extraLines` are signature lines kept after ours. */
export function signNote(text: string, signers: readonly NoteSigner[], extraLines: readonly string[] = []): string {
  assertNoteText(text);
  const message = Buffer.from(text, 'utf8');
  const lines = signers.map((s) => formatSignatureLine(s.name, s.keyId, s.sign(message)));
  return `${text}\n${lines.join('')}${extraLines.join('')}`;
}

export interface OpenedNote extends ParsedNote {
  /** The signatures that verified, by the verifiers that knew them. */
  verified: NoteSignature[];
  /** Signatures from keys no verifier knows (ignored, as the spec requires). */
  unverified: NoteSignature[];
}

/**
 * Parses a note and verifies it (signed-note, "Signatures"): signatures from unknown keys are ignored; a signature
 * from a known key that does not verify rejects the note (BAD_SIGNATURE); no verified signature at all rejects it
 * too (UNVERIFIED).
 */
export function openNote(note: string | Uint8Array, verifiers: readonly NoteVerifier[]): OpenedNote {
  const parsed = parseNote(note);
  const message = Buffer.from(parsed.text, 'utf8');
  const verified: NoteSignature[] = [];
  const unverified: NoteSignature[] = [];
  for (const sig of parsed.signatures) {
    const v = verifiers.find((x) => x.name === sig.name && x.keyId === sig.keyId);
    if (!v) {
      unverified.push(sig);
      continue;
    }
    if (!v.verify(message, sig.signature)) throw new NoteError('BAD_SIGNATURE', `signature by ${sig.name} does not verify`);
    verified.push(sig);
  }
  if (verified.length === 0) throw new NoteError('UNVERIFIED', 'no signature from a known key');
  return { ...parsed, verified, unverified };
}

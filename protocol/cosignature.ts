/**
 * Ed25519 witness cosignatures (c2sp.org/tlog-cosignature, `cosignature/v1`): a note signature line on a checkpoint,
 * `— <cosigner name> base64(key ID ‖ u64 timestamp ‖ Ed25519 signature)`, key ID = SHA-256(name ‖ 0x0A ‖ 0x04 ‖
 * public key)[:4], the signature over
 *
 *   cosignature/v1\n
 *   time <timestamp>\n
 *   <the checkpoint's note text, final newline included>
 *
 * A v1 cosignature states that, at that time, this was the largest consistent tree the cosigner had seen for the
 * origin. Pure (no IO), usable by third parties. (The ML-DSA-44 type of the same spec is not implemented.)
 */
import { nodeCryptoBackend, type Ed25519Backend } from './ed25519.js';
import { NoteError, SIG_TYPE_COSIGNATURE_V1, assertNoteText, formatSignatureLine, formatVerifierKey, isValidKeyName, noteKeyId, type NoteSignature } from './signed-note.js';

export const COSIGNATURE_V1_HEADER = 'cosignature/v1';
/** Timestamps are u64 but must not exceed 2^63 − 1; JS numbers are exact only to 2^53, which bounds them here. */
const MAX_TIMESTAMP = Number.MAX_SAFE_INTEGER;

/** The bytes a v1 cosignature signs. */
export function cosignedMessage(checkpointText: string, timestamp: number): Buffer {
  assertNoteText(checkpointText);
  if (!Number.isSafeInteger(timestamp) || timestamp < 0 || timestamp > MAX_TIMESTAMP) throw new NoteError('MALFORMED_NOTE', `invalid cosignature timestamp ${timestamp}`);
  return Buffer.from(`${COSIGNATURE_V1_HEADER}\ntime ${timestamp}\n${checkpointText}`, 'utf8');
}

/** The key ID of a cosigner (signature type 0x04). */
export function cosignerKeyId(name: string, publicKey: Uint8Array): number {
  return noteKeyId(name, SIG_TYPE_COSIGNATURE_V1, publicKey);
}

/** A cosigner's verifier key: `<name>+<key id>+<base64(0x04 ‖ key)>`. */
export function formatCosignerKey(name: string, publicKey: Uint8Array): string {
  return formatVerifierKey(name, publicKey, SIG_TYPE_COSIGNATURE_V1);
}

/** The signature line (with newline) cosigning `checkpointText` at `timestamp` (POSIX seconds). */
export function signCosignature(checkpointText: string, cosigner: { name: string; seed: Uint8Array }, timestamp: number, backend: Ed25519Backend = nodeCryptoBackend): string {
  if (!isValidKeyName(cosigner.name)) throw new NoteError('MALFORMED_KEY', `invalid cosigner name ${JSON.stringify(cosigner.name)}`);
  const signature = backend.sign(cosigner.seed, cosignedMessage(checkpointText, timestamp));
  const body = Buffer.alloc(8 + signature.length);
  body.writeBigUInt64BE(BigInt(timestamp));
  body.set(signature, 8);
  return formatSignatureLine(cosigner.name, cosignerKeyId(cosigner.name, backend.publicKey(cosigner.seed)), body);
}

/** The timestamp of a parsed cosignature (after the key ID); undefined if it is not 8 + 64 bytes or out of range. */
export function cosignatureTimestamp(sig: Pick<NoteSignature, 'signature'>): number | undefined {
  if (sig.signature.length !== 72) return undefined;
  const t = sig.signature.readBigUInt64BE(0);
  return t <= BigInt(MAX_TIMESTAMP) ? Number(t) : undefined;
}

/**
 * Verifies one cosignature (a parsed signature line) on `checkpointText` by the cosigner `name`/`publicKey`; returns
 * its timestamp, or undefined when the name, key ID, length or signature does not hold. `notAfter` (POSIX seconds)
 * refuses timestamps in the future, as the spec allows.
 */
export function verifyCosignature(
  checkpointText: string,
  sig: NoteSignature,
  cosigner: { name: string; publicKey: Uint8Array },
  opts: { notAfter?: number; backend?: Ed25519Backend } = {},
): number | undefined {
  if (sig.name !== cosigner.name || sig.keyId !== cosignerKeyId(cosigner.name, cosigner.publicKey)) return undefined;
  const timestamp = cosignatureTimestamp(sig);
  if (timestamp === undefined || (opts.notAfter !== undefined && timestamp > opts.notAfter)) return undefined;
  const backend = opts.backend ?? nodeCryptoBackend;
  return backend.verify(cosigner.publicKey, cosignedMessage(checkpointText, timestamp), sig.signature.subarray(8)) ? timestamp : undefined;
}

/**
 * C2SP transparency-log checkpoints (c2sp.org/tlog-checkpoint): a signed note whose text is the log's origin line,
 * the tree size in decimal (no leading zeroes) and the base64 RFC 6962 root hash, each ending in a newline, then
 * optional non-empty extension lines. Pure (no IO), usable by third parties.
 */
import { NoteError, decodeBase64, openNote, signNote, type NoteSigner, type NoteVerifier, type OpenedNote } from './signed-note.js';

export interface Checkpoint {
  origin: string;
  treeSize: number;
  /** 32-byte root hash. */
  rootHash: Buffer;
  extensions: string[];
}

/** True if `origin` is usable as an origin line and as a note key name: non-empty, no spaces, no `+`, no controls. */
export function isValidOrigin(origin: string): boolean {
  return origin.length > 0 && !/[\s+\p{Cc}]/u.test(origin);
}

/** The note text of a checkpoint (ends in a newline). */
export function formatCheckpoint(cp: Checkpoint): string {
  if (!isValidOrigin(cp.origin)) throw new NoteError('MALFORMED_NOTE', `invalid origin ${JSON.stringify(cp.origin)}`);
  if (!Number.isSafeInteger(cp.treeSize) || cp.treeSize < 0) throw new NoteError('MALFORMED_NOTE', `invalid tree size ${cp.treeSize}`);
  if (cp.rootHash.length !== 32) throw new NoteError('MALFORMED_NOTE', 'the root hash must be 32 bytes');
  for (const e of cp.extensions) {
    if (e.length === 0 || e.includes('\n')) throw new NoteError('MALFORMED_NOTE', 'extension lines must be non-empty single lines');
  }
  return [cp.origin, String(cp.treeSize), cp.rootHash.toString('base64'), ...cp.extensions].join('\n') + '\n';
}

/** Parses a checkpoint's note text (not the signatures); throws NoteError MALFORMED_NOTE. */
export function parseCheckpointText(text: string): Checkpoint {
  if (!text.endsWith('\n')) throw new NoteError('MALFORMED_NOTE', 'checkpoint text must end in a newline');
  const lines = text.slice(0, -1).split('\n');
  if (lines.length < 3) throw new NoteError('MALFORMED_NOTE', 'a checkpoint has at least three lines');
  const [origin, size, root, ...extensions] = lines as [string, string, string, ...string[]];
  // Readers must not assume the origin follows the recommended form: only emptiness is an error.
  if (origin.length === 0) throw new NoteError('MALFORMED_NOTE', 'empty origin line');
  if (!/^(0|[1-9][0-9]{0,15})$/.test(size) || !Number.isSafeInteger(Number(size))) throw new NoteError('MALFORMED_NOTE', `invalid tree size line ${JSON.stringify(size)}`);
  const rootHash = decodeBase64(root);
  if (!rootHash || rootHash.length !== 32) throw new NoteError('MALFORMED_NOTE', 'the root hash line is not base64 of 32 bytes');
  if (extensions.some((e) => e.length === 0)) throw new NoteError('MALFORMED_NOTE', 'extension lines must be non-empty');
  return { origin, treeSize: Number(size), rootHash, extensions };
}

/** A checkpoint note signed by `signer` (whose name should be the origin). */
export function signCheckpoint(cp: Checkpoint, signer: NoteSigner): string {
  return signNote(formatCheckpoint(cp), [signer]);
}

export interface OpenedCheckpoint extends OpenedNote {
  checkpoint: Checkpoint;
}

/**
 * Verifies a checkpoint note with the log's verifier (plus any others, e.g. witnesses) and parses it. The origin
 * must equal `expectedOrigin` when given. Throws NoteError.
 */
export function openCheckpoint(note: string | Uint8Array, verifiers: readonly NoteVerifier[], expectedOrigin?: string): OpenedCheckpoint {
  const opened = openNote(note, verifiers);
  const checkpoint = parseCheckpointText(opened.text);
  if (expectedOrigin !== undefined && checkpoint.origin !== expectedOrigin) {
    throw new NoteError('MALFORMED_NOTE', `checkpoint origin ${JSON.stringify(checkpoint.origin)} is not ${JSON.stringify(expectedOrigin)}`);
  }
  return { ...opened, checkpoint };
}

/**
 * How VaultMesh names and signs its ledgers' C2SP checkpoints (docs/LEDGER.md): one log per journal, origin line and
 * key name `<origin>/scans` or `<origin>/commands`, Ed25519 (signed-note type 0x01) with the center's key, and the
 * checkpoint files beside ROOT.txt. Pure (no IO): the center writes them, the CLI and third parties read them.
 */
import { formatCheckpoint, isValidOrigin } from './checkpoint.js';
import { nodeCryptoBackend, type Ed25519Backend } from './ed25519.js';
import { VaultMeshError } from './errors.js';
import { fromHex } from './hex.js';
import type { KeyPair } from './keys.js';
import { ed25519NoteSigner, formatVerifierKey, signNote } from './signed-note.js';

export type CheckpointLog = 'scans' | 'commands';

/** Checkpoint files in the log dir, beside ROOT.txt / COMMANDS_ROOT.txt. */
export const CHECKPOINT_FILES: Readonly<Record<CheckpointLog, string>> = { scans: 'CHECKPOINT', commands: 'COMMANDS_CHECKPOINT' };

/** The origin line (and key name) of one log: `<origin>/scans` or `<origin>/commands`. */
export function logOrigin(origin: string, log: CheckpointLog): string {
  return `${origin}/${log}`;
}

/**
 * The default origin: `<hostname>/vaultmesh`, lower-cased, with anything an origin may not hold (spaces, `+`,
 * controls) dropped. A fallback for a first start; operators set their public name (docs/OPERATIONS.md).
 */
export function defaultLedgerOrigin(hostname: string): string {
  const host = hostname.toLowerCase().replace(/[^a-z0-9.-]/g, '') || 'localhost';
  return `${host}/vaultmesh`;
}

/** Validates an origin setting: a schema-less name without spaces, `+`, controls or a trailing slash. */
export function assertLedgerOrigin(origin: string): void {
  if (!isValidOrigin(origin) || origin.endsWith('/') || /^[a-z]+:\/\//i.test(origin) || origin.length > 200) {
    throw new VaultMeshError('CONFIG_INVALID', `invalid ledger origin ${JSON.stringify(origin)}: use a schema-less name such as cc.example.com/vaultmesh (no spaces, no "+", no trailing "/")`);
  }
}

/** The verifier key (`<name>+<key id>+<base64>`) of one log's checkpoints. */
export function ledgerVerifierKey(origin: string, log: CheckpointLog, publicKey: Uint8Array): string {
  return formatVerifierKey(logOrigin(origin, log), publicKey);
}

/** The signed checkpoint note of a tree (root as lowercase hex, as in ROOT.txt). */
export function makeCheckpointNote(
  origin: string,
  log: CheckpointLog,
  root: { tree_size: number; root_hash: string },
  key: Pick<KeyPair, 'seed'>,
  backend: Ed25519Backend = nodeCryptoBackend,
): string {
  const name = logOrigin(origin, log);
  const rootHash = fromHex(root.root_hash, 32);
  if (!rootHash) throw new VaultMeshError('LEDGER_CORRUPT', `root hash ${root.root_hash} is not 64 hex characters`, { status: 500 });
  return signNote(formatCheckpoint({ origin: name, treeSize: root.tree_size, rootHash, extensions: [] }), [ed25519NoteSigner(name, key.seed, backend)]);
}

/** The cosigner name of an agent witnessing the ledgers (one name, hence one key, per node for both logs). */
export function nodeWitnessName(nodeId: string): string {
  return `nodes.vaultmesh/${nodeId}`;
}

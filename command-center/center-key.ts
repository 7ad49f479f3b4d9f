/**
 * The center's signing key, and what start-up does when it is missing. On a first start (no journals) the key is
 * created. When journals exist but `cc-key.pem` does not, the state dir was lost or pointed elsewhere: creating a
 * key silently would make every agent that pinned the old one refuse commands and the ledgers refuse to start, so
 * the center refuses instead, unless the operator asks for a new key (`--new-center-key`). Then the old chains are
 * kept and continued: their last heads' public keys are recorded in `<state-dir>/previous-keys` and trusted like
 * `--previous-keys`, so the first head signed by the new key links to (and proves consistency with) the old chain.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { VaultMeshError } from '../protocol/errors.js';
import { HEX32_RE } from '../protocol/hex.js';
import { keyIdOf, type KeyPair } from '../protocol/keys.js';
import { writeFileAtomicSync } from '../lib/atomic-file.js';
import { loadOrCreateKeyFile, readKeyFile } from '../lib/key-file.js';
import type { Logger } from '../lib/logger.js';
import { LEDGER_FILES } from '../protocol/ledger-files.js';
import { readProofChain } from '../lib/ledger-files.js';

export function centerKeyPath(stateDir: string): string {
  return join(stateDir, 'cc-key.pem');
}

export function previousKeysPath(stateDir: string): string {
  return join(stateDir, 'previous-keys');
}

/** The key that signed the last head of a ledger chain file. */
export interface ChainSigner {
  chainFile: string;
  keyId: string;
  publicKey: string;
}

export type KeyDecision = 'load' | 'create' | 'refuse' | 'replace';

/** What to do about the key file, from what is on disk. */
export function decideCenterKey(s: { keyExists: boolean; journals: readonly string[]; newCenterKey: boolean }): KeyDecision {
  if (s.keyExists) return 'load';
  if (s.journals.length === 0) return 'create';
  return s.newCenterKey ? 'replace' : 'refuse';
}

export function missingKeyMessage(s: { keyFile: string; logDir: string; journals: readonly string[]; signers: readonly ChainSigner[] }): string {
  const ids = [...new Set(s.signers.map((x) => x.keyId))];
  const signedBy = ids.length
    ? `signed by the center key key_id ${ids.join(', ')} (${s.signers.map((x) => x.chainFile).join(', ')})`
    : 'written by a center whose key is not here';
  return (
    `${s.keyFile} is missing, but ${s.logDir} holds journals (${s.journals.join(', ')}) ${signedBy}. ` +
    'Starting with a new key would make every agent that pinned the old key refuse commands. ' +
    'Restore the state dir from your backup (docs/OPERATIONS.md, "Backup and restore"), or check --state-dir / VAULTMESH_STATE_DIR; ' +
    'to replace the key on purpose, start once with --new-center-key (VAULTMESH_NEW_CENTER_KEY=1; docs/OPERATIONS.md, "Lost center key")'
  );
}

/** The signers of the ledgers' last heads; a chain that cannot be read is left to the ledger's own load to report. */
export function chainSigners(logDir: string): ChainSigner[] {
  const out: ChainSigner[] = [];
  for (const { chainFile } of Object.values(LEDGER_FILES)) {
    try {
      const last = readProofChain(join(logDir, chainFile))?.heads.at(-1);
      if (last) out.push({ chainFile, keyId: last.head.key_id, publicKey: last.public_key });
    } catch {
      // LEDGER_CORRUPT: ledger.load() names the problem.
    }
  }
  return out;
}

/** Public keys recorded by an earlier `--new-center-key` start or retired by a rotation (keys/center-key-ring.ts). */
export function readPreviousKeys(stateDir: string): string[] {
  let text: string;
  try {
    text = readFileSync(previousKeysPath(stateDir), 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  const keys = text.split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
  const bad = keys.find((k) => !HEX32_RE.test(k));
  if (bad !== undefined) throw new VaultMeshError('CONFIG_INVALID', `${previousKeysPath(stateDir)}: "${bad}" is not a public key (64 lowercase hex characters)`);
  return keys;
}

export interface CenterKey {
  key: KeyPair;
  /** Public keys whose signature on a ledger's last head is accepted (recorded when a lost key was replaced). */
  previousKeys: string[];
}

/**
 * Loads the key, creates it on a first start, refuses (CENTER_KEY_MISSING) when journals exist without it, or, with
 * `newCenterKey`, creates a new one and records the old chains' keys. Writes nothing when it refuses.
 */
export function openCenterKey(opts: {
  stateDir: string;
  logDir: string;
  journals: readonly string[];
  newCenterKey: boolean;
  log: Logger;
  /** Signers of heads kept elsewhere than the log dir's chain files (a PostgreSQL center's ledger_heads). */
  storedSigners?: readonly ChainSigner[];
}): CenterKey {
  const keyFile = centerKeyPath(opts.stateDir);
  const journals = opts.journals;
  const decision = decideCenterKey({ keyExists: existsSync(keyFile), journals, newCenterKey: opts.newCenterKey });
  if (decision === 'load') {
    if (opts.newCenterKey) opts.log.warn(`--new-center-key / VAULTMESH_NEW_CENTER_KEY is set but ${keyFile} exists: keeping it (remove the setting)`);
    return { key: readKeyFile(keyFile), previousKeys: readPreviousKeys(opts.stateDir) };
  }
  const signers = [...chainSigners(opts.logDir), ...(opts.storedSigners ?? [])];
  if (decision === 'refuse') {
    throw new VaultMeshError('CENTER_KEY_MISSING', missingKeyMessage({ keyFile, logDir: opts.logDir, journals, signers }));
  }
  const { key } = loadOrCreateKeyFile(keyFile);
  opts.log.info(`created command-center key ${key.keyId} in ${keyFile}`);
  if (decision === 'create') return { key, previousKeys: readPreviousKeys(opts.stateDir) };

  const adopted = [...new Set([...readPreviousKeys(opts.stateDir), ...signers.map((s) => s.publicKey)])].filter((k) => k !== key.publicKeyHex);
  if (adopted.length > 0) {
    writeFileAtomicSync(
      previousKeysPath(opts.stateDir),
      `# Center keys replaced by --new-center-key; the ledgers' old heads are signed by them. Delete this file once\n` +
        `# PROOFCHAIN.json and COMMANDS_PROOFCHAIN.json both end in a head with key_id ${key.keyId}.\n` +
        adopted.map((k) => `${k}\n`).join(''),
      0o644,
    );
  }
  opts.log.warn(
    `--new-center-key: replaced the missing center key by ${key.keyId}. Agents that pinned the old key` +
      `${signers.length ? ` (key_id ${[...new Set(signers.map((s) => keyIdOf(s.publicKey)))].join(', ')})` : ''} refuse commands until they pin ${key.publicKeyHex}` +
      ` (VAULTMESH_CC_PUBKEY) or enroll again; the ledgers continue their chains under the new key (old heads stay verifiable with the old key).`,
  );
  return { key, previousKeys: adopted };
}

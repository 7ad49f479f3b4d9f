/**
 * The center's signing key as it changes under rotation. `key` is a KeyPair that always stands for the current
 * key, so the command service, the ledgers and the checkpoint writers, which hold it from start-up, sign with the
 * new key from the moment the ring switches, without being rebuilt.
 *
 * Files in the state dir: `cc-key.pem` is the signing key; `cc-key.next.pem` (0600) is a prepared next key
 * (`vaultmesh keys rotate --prepare`, or the first step of a rotation). The switch (`settle`) follows the journal:
 * once a `center_key` statement announcing key K is committed, the ring makes K current: it records the old public
 * key in `previous-keys` (the ledgers' old heads stay verifiable after a restart), then renames cc-key.next.pem over
 * cc-key.pem, which retires the old private key. Each step is atomic and the sequence is idempotent, so a crash at
 * any point is completed by the next start (which settles against the replayed journal) — or, before the journal
 * line, leaves a prepared key for the next rotation.
 *
 * A center whose journal announces a key it does not hold while its own key is an older one of the chain (a replica
 * the operator did not give cc-key.next.pem) refuses to sign: reading the key's seed throws CENTER_KEY_NOT_HELD
 * (503), and the ring says so loudly. A key no statement names (--new-center-key after a lost key, a key swapped by
 * hand) is the operator's choice and signs, with a warning.
 */
import { existsSync, readFileSync, renameSync, rmSync, unlinkSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { VaultMeshError } from '../../protocol/errors.js';
import { keyIdOf, type KeyPair } from '../../protocol/keys.js';
import type { SignedRotation } from '../../protocol/center-key-rotation.js';
import { fsyncDirSync, writeFileAtomicSync } from '../../lib/atomic-file.js';
import { loadOrCreateKeyFile, readKeyFile } from '../../lib/key-file.js';
import type { Logger } from '../../lib/logger.js';
import { centerKeyPath, previousKeysPath, readPreviousKeys } from '../center-key.js';

export const nextKeyPath = (stateDir: string): string => join(stateDir, 'cc-key.next.pem');

export type RingStatus = { state: 'ok'; key_id: string } | { state: 'lacking'; key_id: string; public_key: string; serial: number };

export interface CenterKeyRing {
  /** Always the current key; its `seed` throws CENTER_KEY_NOT_HELD while the ring lacks the announced key. */
  readonly key: KeyPair;
  /** Where a prepared next key lives. */
  readonly nextFile: string;
  status(): RingStatus;
  /** The current key, or CENTER_KEY_NOT_HELD. */
  current(): KeyPair;
  /** The prepared next key, if cc-key.next.pem holds one. */
  prepared(): KeyPair | undefined;
  /** Makes (or keeps) cc-key.next.pem, 0600. */
  prepare(): { key: KeyPair; created: boolean };
  /** Follows the journal: makes the last announced key current (see the header). Idempotent. */
  settle(history: readonly SignedRotation[]): RingStatus;
}

export function notHeld(s: { key_id: string; serial: number }, stateDir: string): VaultMeshError {
  return new VaultMeshError(
    'CENTER_KEY_NOT_HELD',
    `the log announces center key ${s.key_id} (rotation #${s.serial}) but this center does not hold it: copy cc-key.next.pem from the host that prepared it into ${stateDir} (0600) and restart, ` +
      `or run vaultmesh keys rotate --prepare there first next time (docs/OPERATIONS.md, "Rotating the center key"); it signs no commands or heads until then`,
    { status: 503 },
  );
}

export function createCenterKeyRing(opts: { stateDir: string; initial: KeyPair; log: Logger }): CenterKeyRing {
  const { stateDir, log } = opts;
  const keyFile = centerKeyPath(stateDir);
  const nextFile = nextKeyPath(stateDir);
  let current = opts.initial;
  let lacking: Extract<RingStatus, { state: 'lacking' }> | undefined;
  let saidReplaced = false;

  const facade: KeyPair = {
    get seed() {
      if (lacking) throw notHeld(lacking, stateDir);
      return current.seed;
    },
    get publicKey() {
      return lacking ? Buffer.from(lacking.public_key, 'hex') : current.publicKey;
    },
    get publicKeyHex() {
      return lacking ? lacking.public_key : current.publicKeyHex;
    },
    get keyId() {
      return lacking ? lacking.key_id : current.keyId;
    },
  };

  const prepared = (): KeyPair | undefined => (existsSync(nextFile) ? readKeyFile(nextFile) : undefined);

  const recordPrevious = (publicKeyHex: string) => {
    const keys = readPreviousKeys(stateDir);
    if (keys.includes(publicKeyHex)) return;
    writeFileAtomicSync(
      previousKeysPath(stateDir),
      `# Center keys this center signed with before (rotations, --new-center-key): the ledgers' older heads are signed\n` +
        `# by them, so they stay trusted for verification. They sign nothing any more.\n` +
        [...keys, publicKeyHex].map((k) => `${k}\n`).join(''),
      0o644,
    );
  };

  const swapTo = (next: KeyPair) => {
    recordPrevious(current.publicKeyHex);
    renameSync(nextFile, keyFile); // the old private key is gone with this rename
    fsyncDirSync(dirname(keyFile));
    writeFileAtomicSync(`${keyFile}.pub`, `${next.publicKeyHex}\n`, 0o644);
    rmSync(`${nextFile}.pub`, { force: true });
    log.info(`center key ${next.keyId} is now the signing key; ${current.keyId} is retired (kept in previous-keys for verification only)`);
    current = next;
  };

  return {
    key: facade,
    nextFile,
    status: () => (lacking ? { ...lacking } : { state: 'ok', key_id: current.keyId }),
    current() {
      if (lacking) throw notHeld(lacking, stateDir);
      return current;
    },
    prepared,
    prepare() {
      if (lacking) throw notHeld(lacking, stateDir);
      const { key, created } = loadOrCreateKeyFile(nextFile);
      if (key.publicKeyHex === current.publicKeyHex) throw new VaultMeshError('INVALID_STATE', `${nextFile} holds the current key: remove it`, { status: 409 });
      if (created) log.info(`prepared the next center key ${key.keyId} in ${nextFile}`);
      return { key, created };
    },
    settle(history) {
      const last = history.reduce<SignedRotation | undefined>((a, r) => (!a || r.statement.serial > a.statement.serial ? r : a), undefined);
      if (!last) return { state: 'ok', key_id: current.keyId };
      const want = last.statement;
      if (current.publicKeyHex !== want.new_public_key) {
        const next = prepared();
        if (next?.publicKeyHex === want.new_public_key) {
          try {
            swapTo(next);
          } catch (err) {
            // The log says the new key signs from here: sign with it (it is in memory) and let the next start redo
            // the file swap, which it does before signing anything (the files are as a crash would leave them).
            log.error(`center key ${next.keyId} is announced but the key file swap failed (${(err as Error).message}); signing with it, the swap is redone at the next start`);
            current = next;
          }
        }
      }
      if (current.publicKeyHex === want.new_public_key) {
        lacking = undefined;
        try {
          // A .pub left stale by a crash between the rename and its rewrite.
          const pub = readOrEmpty(`${keyFile}.pub`).trim();
          if (pub !== current.publicKeyHex) writeFileAtomicSync(`${keyFile}.pub`, `${current.publicKeyHex}\n`, 0o644);
          const stale = prepared();
          if (stale && stale.publicKeyHex === current.publicKeyHex && readKeyFile(keyFile).publicKeyHex === current.publicKeyHex) {
            unlinkSync(nextFile);
            rmSync(`${nextFile}.pub`, { force: true });
          }
        } catch (err) {
          log.warn(`center key files: ${(err as Error).message}`);
        }
        return { state: 'ok', key_id: current.keyId };
      }
      // A key no statement names was put in place outside rotations (--new-center-key after a lost key, or a key
      // swapped by hand): it is the operator's choice, not a replica left behind, so it signs (said once).
      const named = history.some((r) => r.statement.old_public_key === current.publicKeyHex || r.statement.new_public_key === current.publicKeyHex);
      if (!named) {
        lacking = undefined;
        if (!saidReplaced) {
          saidReplaced = true;
          log.warn(
            `the last center key rotation (#${want.serial}) announces ${want.new_key_id}, but this center signs with ${current.keyId}, which no rotation names ` +
              `(replaced with --new-center-key or by hand): agents that follow rotations refuse its commands until they pin it (VAULTMESH_CC_PUBKEY=${current.publicKeyHex})`,
          );
        }
        return { state: 'ok', key_id: current.keyId };
      }
      if (lacking?.public_key !== want.new_public_key) {
        lacking = { state: 'lacking', key_id: keyIdOf(want.new_public_key), public_key: want.new_public_key, serial: want.serial };
        log.error(`CENTER_KEY_NOT_HELD: ${notHeld(lacking, stateDir).message}`);
      }
      return { ...lacking };
    },
  };
}

function readOrEmpty(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}

/**
 * Key and secret files on disk: the private key is PKCS#8 PEM (so `openssl pkey` reads it) in a 0600 file, with
 * its public key as hex in `<file>.pub`. A secret file others can read is refused.
 */
import { readFileSync, statSync } from 'node:fs';
import { VaultMeshError } from '../protocol/errors.js';
import { generateKeyPair, keyPairFromSeed, privateKeyPem, seedFromPem, type KeyPair } from '../protocol/keys.js';
import { writeFileAtomicSync } from './atomic-file.js';

/** Refuses a secret file that others can read, as ssh does: the fix is one chmod away and says so. */
export function assertPrivateFile(path: string): void {
  const mode = statSync(path).mode & 0o777;
  if (mode & 0o077) {
    throw new VaultMeshError('INSECURE_KEY_FILE', `${path} is accessible by group/others (mode ${mode.toString(8)}); run: chmod 600 ${path}`);
  }
}

export function readKeyFile(path: string): KeyPair {
  assertPrivateFile(path);
  return keyPairFromSeed(seedFromPem(readFileSync(path, 'utf8')));
}

/** Loads the key at `path`, creating it (0600) on first use. `created` tells the caller to log it. */
export function loadOrCreateKeyFile(path: string): { key: KeyPair; created: boolean } {
  try {
    return { key: readKeyFile(path), created: false };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  const key = generateKeyPair();
  writeFileAtomicSync(path, privateKeyPem(key.seed), 0o600);
  writeFileAtomicSync(`${path}.pub`, `${key.publicKeyHex}\n`, 0o644);
  return { key, created: true };
}

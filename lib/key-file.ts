/**
 * Key and secret files on disk: the private key is PKCS#8 PEM (so `openssl pkey` reads it) in a 0600 file, with
 * its public key as hex in `<file>.pub`. A secret file others can read is refused.
 */
import { readFileSync } from 'node:fs';
import { generateKeyPair, keyPairFromSeed, privateKeyPem, seedFromPem, type KeyPair } from '../protocol/keys.js';
import { writeFileAtomicSync } from './atomic-file.js';

// In a module of its own (no key code, no node:crypto) for the CLI's API client, which checks secret files only.
export { assertPrivateFile } from './private-file.js';
import { assertPrivateFile } from './private-file.js';

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

/**
 * The pure-JS Ed25519 backend (@noble/ed25519, strict RFC 8032 with `zip215: false`): for verifiers that run where
 * node:crypto does not, and as an independent cross-check of the node:crypto backend in tests and benchmarks.
 * Importing it gives noble its synchronous SHA-512 (node:crypto's) unless the caller already set one.
 */
import { createHash } from 'node:crypto';
import * as noble from '@noble/ed25519';
import type { Ed25519Backend } from './ed25519.js';

noble.hashes.sha512 ??= (message: Uint8Array) => new Uint8Array(createHash('sha512').update(message).digest());

export function createNobleBackend(): Ed25519Backend {
  return {
    name: 'noble',
    publicKey: (seed) => noble.getPublicKey(seed),
    sign: (seed, message) => noble.sign(message, seed),
    verify(publicKey, message, signature) {
      if (publicKey.length !== 32 || signature.length !== 64) return false;
      try {
        return noble.verify(signature, message, publicKey, { zip215: false });
      } catch {
        return false;
      }
    },
  };
}

export const nobleBackend: Ed25519Backend = createNobleBackend();

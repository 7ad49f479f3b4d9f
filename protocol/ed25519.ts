/**
 * Ed25519 (RFC 8032) behind one interface with two interchangeable backends:
 * - `nodeCrypto` (here): node:crypto / OpenSSL, ≈16× faster; the center, agent and CLI use it.
 * - `noble` (ed25519-noble.ts): @noble/ed25519, pure JS, strict RFC 8032 (`zip215: false`); for portable verifiers
 *   and cross-checks. It is a module of its own so that the programs never load @noble/ed25519.
 * Both agree on every RFC 8032 vector (see ed25519.test.ts).
 */
import { createPrivateKey, createPublicKey, sign as nodeSign, verify as nodeVerify, type KeyObject } from 'node:crypto';

export interface Ed25519Backend {
  readonly name: 'node' | 'noble';
  /** 32-byte public key of a 32-byte private seed. */
  publicKey(seed: Uint8Array): Uint8Array;
  sign(seed: Uint8Array, message: Uint8Array): Uint8Array;
  /** Never throws on malformed input: a bad key or signature simply does not verify. */
  verify(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean;
}

// The DER prefix that wraps a raw 32-byte Ed25519 seed as PKCS#8, so node:crypto can import it.
const PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');

export function privateKeyObject(seed: Uint8Array): KeyObject {
  return createPrivateKey({ key: Buffer.concat([PKCS8_PREFIX, seed]), format: 'der', type: 'pkcs8' });
}

/**
 * Imported as a JWK, not as DER SPKI: the same 32 bytes become the same key (no import validates the point; verify
 * does), but OpenSSL 3's DER decoder chain costs 5-10× more (≈ 120-260 µs against ≈ 17-44 µs per key on a loaded
 * 2-core machine). A center meets each of its nodes' keys once after start-up, within one heartbeat interval:
 * 10,000 imports in 30 s.
 */
export function publicKeyObject(publicKey: Uint8Array): KeyObject {
  return createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: Buffer.from(publicKey).toString('base64url') }, format: 'jwk' });
}

/** Importing a KeyObject costs about as much as a verify, so the center keeps one per enrolled key. */
function createKeyCache<T>(make: (key: Uint8Array) => T, max = 20_000): (key: Uint8Array) => T {
  const cache = new Map<string, T>();
  return (key) => {
    const id = Buffer.from(key).toString('hex');
    let value = cache.get(id);
    if (value === undefined) {
      value = make(key);
      if (cache.size >= max) cache.delete(cache.keys().next().value as string);
      cache.set(id, value);
    }
    return value;
  };
}

export function createNodeCryptoBackend(): Ed25519Backend {
  const privateKeys = createKeyCache(privateKeyObject, 64);
  const publicKeys = createKeyCache(publicKeyObject);
  return {
    name: 'node',
    publicKey(seed) {
      const der = createPublicKey(privateKeys(seed)).export({ format: 'der', type: 'spki' });
      return new Uint8Array(der.subarray(der.length - 32));
    },
    sign(seed, message) {
      return new Uint8Array(nodeSign(null, message, privateKeys(seed)));
    },
    verify(publicKey, message, signature) {
      if (publicKey.length !== 32 || signature.length !== 64) return false;
      try {
        return nodeVerify(null, message, publicKeys(publicKey), signature);
      } catch {
        return false; // an invalid point encoding is a failed verification, not a fault
      }
    },
  };
}

export const nodeCryptoBackend: Ed25519Backend = createNodeCryptoBackend();

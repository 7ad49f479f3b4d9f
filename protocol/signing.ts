/**
 * Signatures over canonical payloads: Ed25519 over the RFC 8785 bytes of a JSON value, hex on the wire.
 */
import { canonicalBytes } from './canonical-json.js';
import { nodeCryptoBackend, type Ed25519Backend } from './ed25519.js';
import { fromHex, toHex } from './hex.js';
import type { KeyPair } from './keys.js';

export function signPayload(payload: unknown, key: Pick<KeyPair, 'seed'>, backend: Ed25519Backend = nodeCryptoBackend): string {
  return toHex(backend.sign(key.seed, canonicalBytes(payload)));
}

/** True only for a well-formed hex signature by `publicKeyHex` over the canonical bytes of `payload`. */
export function verifyPayload(
  payload: unknown,
  signatureHex: string,
  publicKeyHex: string,
  backend: Ed25519Backend = nodeCryptoBackend,
): boolean {
  const sig = fromHex(signatureHex, 64);
  const pub = fromHex(publicKeyHex, 32);
  if (!sig || !pub) return false;
  let bytes: Buffer;
  try {
    bytes = canonicalBytes(payload);
  } catch {
    return false;
  }
  return backend.verify(pub, bytes, sig);
}

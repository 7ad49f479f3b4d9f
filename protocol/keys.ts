/**
 * Ed25519 keys. The private key is stored as PKCS#8 PEM (so `openssl pkey` reads it); the public key travels as 64
 * lowercase hex characters; `key_id` is the first 16 hex characters of SHA-256 over the raw public key. Reading and
 * writing key files is IO, in lib/key-file.ts.
 */
import { createHash, createPrivateKey, randomBytes } from 'node:crypto';
import { nodeCryptoBackend, type Ed25519Backend } from './ed25519.js';
import { toHex } from './hex.js';
import { VaultMeshError } from './errors.js';

export interface KeyPair {
  /** 32-byte private seed. */
  readonly seed: Uint8Array;
  readonly publicKey: Uint8Array;
  readonly publicKeyHex: string;
  readonly keyId: string;
}

/** Stable short identifier of a public key: first 16 hex of SHA-256(raw public key). */
export function keyIdOf(publicKey: Uint8Array | string): string {
  const raw = typeof publicKey === 'string' ? Buffer.from(publicKey, 'hex') : publicKey;
  return createHash('sha256').update(raw).digest('hex').slice(0, 16);
}

export function keyPairFromSeed(seed: Uint8Array, backend: Ed25519Backend = nodeCryptoBackend): KeyPair {
  const publicKey = backend.publicKey(seed);
  return { seed, publicKey, publicKeyHex: toHex(publicKey), keyId: keyIdOf(publicKey) };
}

export function generateKeyPair(random: (n: number) => Uint8Array = randomBytes): KeyPair {
  return keyPairFromSeed(random(32));
}

const PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');

export function privateKeyPem(seed: Uint8Array): string {
  const der = Buffer.concat([PKCS8_PREFIX, seed]);
  const b64 = der.toString('base64').match(/.{1,64}/g)!.join('\n');
  return `-----BEGIN PRIVATE KEY-----\n${b64}\n-----END PRIVATE KEY-----\n`;
}

/** Reads a PKCS#8 PEM Ed25519 private key (ours or one made by `openssl genpkey -algorithm ed25519`). */
export function seedFromPem(pem: string): Uint8Array {
  let jwk;
  try {
    jwk = createPrivateKey({ key: pem, format: 'pem' }).export({ format: 'jwk' });
  } catch (cause) {
    throw new VaultMeshError('BAD_KEY_FILE', 'not a PEM private key', { cause });
  }
  if (jwk.kty !== 'OKP' || jwk.crv !== 'Ed25519' || typeof jwk.d !== 'string') {
    throw new VaultMeshError('BAD_KEY_FILE', 'not an Ed25519 private key');
  }
  return new Uint8Array(Buffer.from(jwk.d, 'base64url'));
}

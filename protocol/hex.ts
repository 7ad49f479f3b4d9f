/** Lowercase hex helpers: keys, signatures and hashes travel as lowercase hex on the wire. */
import { z } from 'zod';

const HEX_RE = /^(?:[0-9a-f]{2})*$/;

/** Lowercase hex of exactly `chars` characters (the one pattern every hex field on the wire uses). */
export function hexPattern(chars: number): RegExp {
  return new RegExp(`^[0-9a-f]{${chars}}$`);
}

const hexOf = (chars: number, what: string) => z.string().regex(hexPattern(chars), `must be ${chars} lowercase hex characters${what}`);

/** 32 bytes: Ed25519 public keys, SHA-256 digests, Merkle nodes. */
export const HEX32_RE = hexPattern(64);
export const hex32Schema = hexOf(64, '');
export const hexKeySchema = hex32Schema;
export const sha256HexSchema = hex32Schema;
/** A key id: the first 8 bytes of SHA-256 over the public key. */
export const keyIdSchema = hexOf(16, '');
/** An Ed25519 signature (64 bytes). */
export const signatureHexSchema = hexOf(128, '');

export function toHex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex');
}

/** Parses lowercase hex of an exact byte length; returns undefined for anything else. */
export function fromHex(hex: string, byteLength?: number): Buffer | undefined {
  if (typeof hex !== 'string' || !HEX_RE.test(hex)) return undefined;
  if (byteLength !== undefined && hex.length !== byteLength * 2) return undefined;
  return Buffer.from(hex, 'hex');
}

export function isHex(value: string, byteLength: number): boolean {
  return value.length === byteLength * 2 && HEX_RE.test(value);
}

/**
 * RFC 8785 (JSON Canonicalization Scheme) via the maintained `canonicalize` package.
 * Every signature and every journal line in VaultMesh is made over these bytes.
 */
import canonicalize from 'canonicalize';

/** Canonical JSON text of `value` (RFC 8785). Throws on values JSON cannot represent (undefined at top, BigInt, NaN). */
export function canonicalJson(value: unknown): string {
  const text = canonicalize(value);
  if (text === undefined) throw new TypeError('value has no JSON representation');
  return text;
}

/** UTF-8 bytes of the canonical JSON of `value`. */
export function canonicalBytes(value: unknown): Buffer {
  return Buffer.from(canonicalJson(value), 'utf8');
}

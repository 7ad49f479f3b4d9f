/**
 * Bearer secrets (admin token, join tokens, later API tokens): generated with 256 random bits, stored and compared
 * only as SHA-256 hashes, compared in constant time.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

export function newSecret(prefix: string, bytes = 32, random: (n: number) => Buffer = randomBytes): string {
  return `${prefix}_${random(bytes).toString('base64url')}`;
}

export function hashSecret(secret: string): string {
  return createHash('sha256').update(secret, 'utf8').digest('hex');
}

/** Constant-time check of a presented secret against a stored SHA-256 hex hash. */
export function secretMatches(presented: string, storedHashHex: string): boolean {
  const a = createHash('sha256').update(presented, 'utf8').digest();
  const b = Buffer.from(storedHashHex, 'hex');
  return b.length === a.length && timingSafeEqual(a, b);
}

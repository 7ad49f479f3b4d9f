/** Lowercase hex helpers: keys, signatures and hashes travel as lowercase hex on the wire. */
const HEX_RE = /^(?:[0-9a-f]{2})*$/;

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

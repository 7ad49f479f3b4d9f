/**
 * The wire format between the center and its signature-verification workers: a batch of (public key, signature,
 * message) triples packed into one ArrayBuffer, so a batch is one transferred buffer (no structured clone of
 * objects) and the worker reads it without allocating per item. Pure: no threads here.
 *
 * Layout per item: public key (32 bytes) ‖ signature (64) ‖ message length (u32 little-endian) ‖ message.
 * The answer is one byte per item, 1 = verified.
 */

export interface VerifyItem {
  publicKey: Uint8Array;
  signature: Uint8Array;
  message: Uint8Array;
}

const HEAD = 32 + 64 + 4;

/** Packs items whose key and signature have the Ed25519 sizes (the caller refuses others before this). */
export function packBatch(items: readonly VerifyItem[]): ArrayBuffer {
  let size = 0;
  for (const it of items) size += HEAD + it.message.byteLength;
  const buf = new ArrayBuffer(size);
  const bytes = new Uint8Array(buf);
  const view = new DataView(buf);
  let at = 0;
  for (const it of items) {
    bytes.set(it.publicKey, at);
    bytes.set(it.signature, at + 32);
    view.setUint32(at + 96, it.message.byteLength, true);
    bytes.set(it.message, at + HEAD);
    at += HEAD + it.message.byteLength;
  }
  return buf;
}

/** The inverse of packBatch, as views into `buf` (no copies). */
export function unpackBatch(buf: ArrayBuffer): VerifyItem[] {
  const bytes = new Uint8Array(buf);
  const view = new DataView(buf);
  const items: VerifyItem[] = [];
  let at = 0;
  while (at + HEAD <= bytes.byteLength) {
    const len = view.getUint32(at + 96, true);
    if (at + HEAD + len > bytes.byteLength) throw new RangeError('truncated verify batch');
    items.push({ publicKey: bytes.subarray(at, at + 32), signature: bytes.subarray(at + 32, at + 96), message: bytes.subarray(at + HEAD, at + HEAD + len) });
    at += HEAD + len;
  }
  if (at !== bytes.byteLength) throw new RangeError('trailing bytes in verify batch');
  return items;
}

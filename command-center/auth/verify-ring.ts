/**
 * The shared-memory ring between the center and one signature-verification worker (verify-pool.ts): a
 * SharedArrayBuffer of fixed-size slots the main thread writes (public key, signature, message) into and the worker
 * answers in place, one byte per slot. Handing a check over is a copy into the ring and one atomic store; the worker
 * is woken (a futex) only when it was asleep, and a busy worker is never woken at all. Pure layout: no threads here.
 *
 * Buffer: control words (each on its own cache line) ‖ `slots` × `slotBytes` request slots ‖ `slots` answer bytes.
 * Slot: public key (32 bytes) ‖ signature (64) ‖ message length (u32 little-endian) ‖ message.
 * Answer byte: 0 = not yet, 1 = verified, 2 = not verified. Sequence numbers are Int32 counters that wrap
 * (`(n + 1) | 0`); a sequence number's slot is `n & (slots - 1)`, so `slots` is a power of two.
 */

export interface VerifyItem {
  publicKey: Uint8Array;
  signature: Uint8Array;
  message: Uint8Array;
}

export interface RingLayout {
  /** Request slots; a power of two. */
  slots: number;
  /** Bytes per slot, header included. */
  slotBytes: number;
}

/** Int32 indices of the control words, 64 bytes apart so the two threads' counters never share a cache line. */
export const CTL = {
  /** Sequence number of the next item the main thread will write (items below it are ready). */
  produced: 0,
  /** Sequence number of the next item the worker will answer (items below it are answered). */
  done: 16,
  /** 1 while the worker waits on `produced`: only then does a hand-off need a wake-up. */
  sleeping: 32,
  /** Set to 1 to make the worker's loop return. */
  stop: 48,
} as const;
export const CTL_BYTES = 256;
export const HEAD = 32 + 64 + 4;

export function ringBytes(l: RingLayout): number {
  return CTL_BYTES + l.slots * l.slotBytes + l.slots;
}

/** The smallest power of two ≥ n (and ≥ 1). */
export function slotsFor(n: number): number {
  let s = 1;
  while (s < n) s *= 2;
  return s;
}

export interface RingViews {
  ctl: Int32Array;
  data: Uint8Array;
  view: DataView;
  answers: Uint8Array;
}

export function ringViews(buf: SharedArrayBuffer, l: RingLayout): RingViews {
  const dataBytes = l.slots * l.slotBytes;
  return {
    ctl: new Int32Array(buf, 0, CTL_BYTES / 4),
    data: new Uint8Array(buf, CTL_BYTES, dataBytes),
    view: new DataView(buf, CTL_BYTES, dataBytes),
    answers: new Uint8Array(buf, CTL_BYTES + dataBytes, l.slots),
  };
}

/** Whether an item fits a slot (an Ed25519 key and signature, and a message no longer than the slot leaves room for). */
export function fitsSlot(item: VerifyItem, slotBytes: number): boolean {
  return item.publicKey.byteLength === 32 && item.signature.byteLength === 64 && item.message.byteLength <= slotBytes - HEAD;
}

/** Writes `item` (which `fitsSlot`) into slot `index` and clears its answer. */
export function writeItem(r: RingViews, slotBytes: number, index: number, item: VerifyItem): void {
  const at = index * slotBytes;
  r.data.set(item.publicKey, at);
  r.data.set(item.signature, at + 32);
  r.view.setUint32(at + 96, item.message.byteLength, true);
  r.data.set(item.message, at + HEAD);
  r.answers[index] = 0;
}

/** The item in slot `index`, as views into the ring (no copies). */
export function readItem(r: RingViews, slotBytes: number, index: number): VerifyItem {
  const at = index * slotBytes;
  const len = r.view.getUint32(at + 96, true);
  if (len > slotBytes - HEAD) throw new RangeError('verify ring slot overflows');
  return { publicKey: r.data.subarray(at, at + 32), signature: r.data.subarray(at + 32, at + 96), message: r.data.subarray(at + HEAD, at + HEAD + len) };
}

/**
 * C2SP tiled transparency logs (c2sp.org/tlog-tiles): the Merkle tree served as tiles of 256 hashes, and the entries
 * as bundles of big-endian uint16 length-prefixed entries. Pure (no IO), usable by third parties: paths, which
 * tiles a tree size has, tile contents from any RFC 6962 range hasher, entry bundle encoding.
 *
 * Tile at level L, index N, width W: hash i (0 ≤ i < W) is MTH(D[(N·256 + i)·256^L : (N·256 + i + 1)·256^L]).
 * A tile of width W < 256 is partial; it exists for a tree of size s when (N·256 + W)·256^L ≤ s.
 */
import { HASH_SIZE, type RangeHasher } from './merkle.js';

export const TILE_HEIGHT = 8;
export const TILE_WIDTH = 256;
/** Largest entry an entry bundle can carry (uint16 length prefix). */
export const MAX_BUNDLE_ENTRY = 0xffff;
/** Beyond this level a tile would span more than 2^53 leaves: no tree of a safe-integer size has one. */
const MAX_LEVEL = 6;

export interface TileRef {
  /** 0–63 for hash tiles; 'entries' for entry bundles (whose geometry is that of level 0). */
  level: number | 'entries';
  index: number;
  /** 256 for a full tile, 1–255 for a partial one. */
  width: number;
}

/** `<N>` of a tile path: zero-padded 3-digit elements, all but the last prefixed with `x` (1234067 → x001/x234/067). */
export function formatTileIndex(n: number): string {
  if (!Number.isSafeInteger(n) || n < 0) throw new RangeError(`invalid tile index ${n}`);
  const parts: string[] = [];
  let rest = n;
  do {
    parts.unshift(String(rest % 1000).padStart(3, '0'));
    rest = Math.floor(rest / 1000);
  } while (rest > 0);
  return parts.map((p, i) => (i < parts.length - 1 ? `x${p}` : p)).join('/');
}

/** The path of a tile below the log prefix: `tile/<L>/<N>[.p/<W>]` or `tile/entries/<N>[.p/<W>]`. */
export function tilePath(t: TileRef): string {
  const suffix = t.width === TILE_WIDTH ? '' : `.p/${t.width}`;
  return `tile/${t.level}/${formatTileIndex(t.index)}${suffix}`;
}

/**
 * Parses the part of a tile path after `tile/` (e.g. `0/x001/234.p/5`, `entries/000`). Only the canonical encoding
 * is accepted (no extra leading `x000` elements, no leading zeroes in L or W), so each tile has one URL.
 */
export function parseTilePath(rest: string): TileRef | undefined {
  const m = /^(entries|0|[1-9][0-9]?)\/((?:x[0-9]{3}\/)*[0-9]{3})(?:\.p\/([1-9][0-9]{0,2}))?$/.exec(rest);
  if (!m) return undefined;
  const level = m[1] === 'entries' ? 'entries' : Number(m[1]);
  if (level !== 'entries' && level > 63) return undefined;
  const digits = m[2]!.replace(/[x/]/g, '');
  if (digits.length > 15) return undefined;
  const index = Number(digits);
  if (formatTileIndex(index) !== m[2]) return undefined;
  const width = m[3] === undefined ? TILE_WIDTH : Number(m[3]);
  if (m[3] !== undefined && width > TILE_WIDTH - 1) return undefined;
  return { level, index, width };
}

/** True if the tree of `treeSize` leaves has this tile (full, or partial of exactly or more than this width). */
export function tileExists(t: TileRef, treeSize: number): boolean {
  const level = t.level === 'entries' ? 0 : t.level;
  if (level > MAX_LEVEL) return false;
  return (t.index * TILE_WIDTH + t.width) * TILE_WIDTH ** level <= treeSize;
}

/** Every tile of a tree of `treeSize` leaves: the full tiles of each level, then its partial one if any. */
export function tilesForSize(treeSize: number): TileRef[] {
  const out: TileRef[] = [];
  for (let level = 0; level <= MAX_LEVEL; level++) {
    const hashes = Math.floor(treeSize / TILE_WIDTH ** level);
    if (hashes === 0) break;
    const full = Math.floor(hashes / TILE_WIDTH);
    for (let n = 0; n < full; n++) out.push({ level, index: n, width: TILE_WIDTH });
    const partial = hashes % TILE_WIDTH;
    if (partial > 0) out.push({ level, index: full, width: partial });
  }
  return out;
}

/** The leaf range [start, end) an entry bundle (or a level-0 tile) covers. */
export function bundleRange(t: Pick<TileRef, 'index' | 'width'>): { start: number; end: number } {
  const start = t.index * TILE_WIDTH;
  return { start, end: start + t.width };
}

/** The bytes of a hash tile: `width` hashes of 32 bytes, from any RFC 6962 range hasher over the log's leaves. */
export function tileHashes(hashRange: RangeHasher, level: number, index: number, width: number): Buffer {
  const span = TILE_WIDTH ** level;
  const out = Buffer.allocUnsafe(width * HASH_SIZE);
  for (let i = 0; i < width; i++) {
    const start = (index * TILE_WIDTH + i) * span;
    out.set(hashRange(start, start + span), i * HASH_SIZE);
  }
  return out;
}

/** An entry that does not fit an entry bundle (longer than 65,535 bytes). */
export class EntryTooLargeError extends RangeError {
  constructor(
    readonly entryIndex: number,
    readonly length: number,
  ) {
    super(`entry ${entryIndex} is ${length} bytes, more than an entry bundle's ${MAX_BUNDLE_ENTRY}`);
    this.name = 'EntryTooLargeError';
  }
}

/**
 * Encodes entries as a bundle: each one as its big-endian uint16 length and its bytes. `firstIndex` (the log index of
 * the first entry) only names the entry in the error when one is too large.
 */
export function encodeEntryBundle(entries: readonly Uint8Array[], firstIndex = 0): Buffer {
  let total = 0;
  entries.forEach((e, i) => {
    if (e.length > MAX_BUNDLE_ENTRY) throw new EntryTooLargeError(firstIndex + i, e.length);
    total += 2 + e.length;
  });
  const out = Buffer.allocUnsafe(total);
  let at = 0;
  for (const e of entries) {
    out.writeUInt16BE(e.length, at);
    out.set(e, at + 2);
    at += 2 + e.length;
  }
  return out;
}

/** Splits an entry bundle into its entries; undefined if the lengths do not add up to the bundle exactly. */
export function decodeEntryBundle(bundle: Uint8Array): Buffer[] | undefined {
  const buf = Buffer.from(bundle.buffer, bundle.byteOffset, bundle.byteLength);
  const out: Buffer[] = [];
  let at = 0;
  while (at < buf.length) {
    if (at + 2 > buf.length) return undefined;
    const len = buf.readUInt16BE(at);
    if (at + 2 + len > buf.length) return undefined;
    out.push(buf.subarray(at + 2, at + 2 + len));
    at += 2 + len;
  }
  return out;
}

/**
 * The state snapshot file format (pure: bytes in, bytes out). A snapshot saves what replay builds, so a center can
 * start from it and replay only the tail of the log; the log stays the truth, and any doubt about a snapshot means
 * a full replay, never a wrong state.
 *
 *   VMSNAP\n
 *   <sha256 hex of everything after this line>\n
 *   <header: one line of JSON>\n
 *   <payload bytes (payload_bytes of them)>
 *
 * The checksum covers the header and the payload, so a flipped bit in the seq is caught like one in the state. The
 * header names what the payload is only valid for: the seq it covers and the SHA-256 of that entry's stored line
 * (checked against the log at start: a snapshot from another log, or from beyond this one's end, is refused), the
 * format version, the release that wrote it (reducers may change between releases) and the settings that shape the
 * projections (ring and window sizes).
 */
import { createHash } from 'node:crypto';
import { z } from 'zod';

export const SNAPSHOT_MAGIC = 'VMSNAP\n';
export const SNAPSHOT_FORMAT = 'vaultmesh-state-snapshot';
/**
 * Bumped whenever the payload's layout changes, or a reducer or projection changes what it builds from the same
 * entries (a release bump invalidates snapshots too, but development builds share a version): a snapshot of another
 * version is not used.
 */
export const SNAPSHOT_VERSION = 7; // 2: commands hold proposals (m-of-n approval); 3: node records keep their last heartbeat seq, and the open outages (fleet/outages.ts); 4: captured in slices (center-state.ts); 5: histories hold their samples only (no empty room, no ring starts), the de-duplication window its keys as bytes (store/recent-ids.ts); 6: node records in JSON chunks of 50 (center-state.ts), so a load reads and parses the file part by part; 7: command records in JSON chunks with their signed command and receipt as JSON text (parsed on first read: snapshot/deferred-json.ts), the ledgers' id indexes as one JSON text each (built on first lookup: ledger/id-index.ts), the attention and outage maps as JSON, all written in later slices of the capture

const headerSchema = z.object({
  format: z.literal(SNAPSHOT_FORMAT),
  v: z.number().int().positive(),
  seq: z.number().int().positive(),
  line_sha256: z.string().regex(/^[0-9a-f]{64}$/),
  created_at: z.string(),
  center_version: z.string(),
  settings: z.record(z.string(), z.union([z.number(), z.string()])),
  payload_bytes: z.number().int().nonnegative(),
});
export type SnapshotHeader = z.infer<typeof headerSchema>;

/** The bytes before the payload, given the payload's SHA-256 state already fed with it (see `snapshotHasher`). */
export function snapshotPrefix(header: SnapshotHeader, digestHex: string): Buffer {
  return Buffer.concat([Buffer.from(`${SNAPSHOT_MAGIC}${digestHex}\n`, 'latin1'), headerLine(header)]);
}

/**
 * The header line as hashed: the checksum starts with it, then the payload follows. Padded with spaces (still one
 * JSON line) so that the payload starts at a multiple of 8 bytes (the magic and checksum lines are 72 bytes): a
 * typed array in it can then be read in place.
 */
export function headerLine(header: SnapshotHeader): Buffer {
  const json = Buffer.from(JSON.stringify(header), 'utf8');
  const padded = Math.ceil((json.length + 1) / 8) * 8;
  return Buffer.concat([json, Buffer.alloc(padded - json.length - 1, 0x20), Buffer.from('\n')]);
}

/** Whole file in one call (tests, small states); the snapshotter hashes large payloads in slices instead. */
export function encodeSnapshot(header: SnapshotHeader, payload: Buffer): Buffer {
  const h = createHash('sha256').update(headerLine(header)).update(payload).digest('hex');
  return Buffer.concat([snapshotPrefix(header, h), payload]);
}

export type Decoded = { ok: true; header: SnapshotHeader; payload: Buffer } | { ok: false; reason: string };

/** What this center can use: its format version, its release, its projection settings. */
export interface SnapshotExpectation {
  centerVersion: string;
  settings: Record<string, number | string>;
}

/**
 * A snapshot's bytes read by position: a file read in parts (snapshot-file.ts), so that start-up never holds the
 * whole file in one buffer, or a buffer (tests, `decodeSnapshot`).
 */
export interface SnapshotBytes {
  readonly size: number;
  /** `length` bytes from `position`, in a buffer the caller may keep (it holds those bytes only). */
  read(position: number, length: number): Buffer;
  /** Fills `target` with the bytes from `position` (e.g. straight into a typed array's memory). */
  readInto(position: number, target: Uint8Array): void;
}

/** A buffer as SnapshotBytes: reads are views on it, not copies. */
export function bufferBytes(buf: Buffer): SnapshotBytes {
  return {
    size: buf.length,
    read: (position, length) => buf.subarray(position, position + length),
    readInto: (position, target) => target.set(buf.subarray(position, position + target.length)),
  };
}

export type Checked = { ok: true; header: SnapshotHeader; payloadStart: number } | { ok: false; reason: string };

/** The checksum is computed over pieces of this size, so checking a file never reads it into one buffer. */
const CHECK_PIECE = 4 << 20;
/** The magic, checksum and header lines are read in one piece of at most this much (a header is a few hundred bytes). */
const PREFIX_MAX = 64 << 10;

/**
 * Checks a snapshot's framing, checksum and whether this center may use it, reading `src` piece by piece; where its
 * payload starts. Never throws on bad bytes (only if reading itself fails).
 */
export function checkSnapshot(src: SnapshotBytes, expect: SnapshotExpectation, pieceBytes = CHECK_PIECE): Checked {
  const magicLen = SNAPSHOT_MAGIC.length;
  const prefix = src.read(0, Math.min(src.size, PREFIX_MAX));
  if (prefix.length < magicLen || prefix.subarray(0, magicLen).toString('latin1') !== SNAPSHOT_MAGIC) return { ok: false, reason: 'not a state snapshot (no VMSNAP header)' };
  const digestEnd = prefix.indexOf(10, magicLen);
  if (digestEnd !== magicLen + 64) return { ok: false, reason: 'truncated or malformed (no checksum line)' };
  const digest = prefix.subarray(magicLen, digestEnd).toString('latin1');
  const headerEnd = prefix.indexOf(10, digestEnd + 1);
  if (headerEnd === -1) return { ok: false, reason: 'truncated (no complete header)' };
  const hash = createHash('sha256');
  // One piece's buffer, read into again and again: the pieces are garbage at once (no 50 MiB buffer to collect).
  const piece = new Uint8Array(Math.max(1, Math.min(pieceBytes, src.size - digestEnd - 1)));
  for (let at = digestEnd + 1; at < src.size; at += piece.length) {
    const part = piece.subarray(0, Math.min(piece.length, src.size - at));
    src.readInto(at, part);
    hash.update(part);
  }
  if (hash.digest('hex') !== digest) return { ok: false, reason: 'checksum mismatch (the file was truncated or changed after it was written)' };
  let header: SnapshotHeader;
  try {
    const parsed = headerSchema.safeParse(JSON.parse(prefix.subarray(digestEnd + 1, headerEnd).toString('utf8')));
    if (!parsed.success) return { ok: false, reason: 'malformed header' };
    header = parsed.data;
  } catch {
    return { ok: false, reason: 'malformed header' };
  }
  const payloadStart = headerEnd + 1;
  if (src.size - payloadStart !== header.payload_bytes) return { ok: false, reason: `payload is ${src.size - payloadStart} bytes, the header says ${header.payload_bytes}` };
  if (header.v !== SNAPSHOT_VERSION) return { ok: false, reason: `format version ${header.v} (this center reads version ${SNAPSHOT_VERSION})` };
  if (header.center_version !== expect.centerVersion) return { ok: false, reason: `written by release ${header.center_version} (this is ${expect.centerVersion})` };
  for (const [k, v] of Object.entries(expect.settings)) {
    if (header.settings[k] !== v) return { ok: false, reason: `taken with ${k} = ${String(header.settings[k])} (now ${String(v)})` };
  }
  return { ok: true, header, payloadStart };
}

/** Checks a snapshot file's bytes held in one buffer (see checkSnapshot); the payload is a view on it. Never throws. */
export function decodeSnapshot(buf: Buffer, expect: SnapshotExpectation): Decoded {
  const c = checkSnapshot(bufferBytes(buf), expect);
  return c.ok ? { ok: true, header: c.header, payload: buf.subarray(c.payloadStart) } : c;
}

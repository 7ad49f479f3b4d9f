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
export const SNAPSHOT_VERSION = 5; // 2: commands hold proposals (m-of-n approval); 3: node records keep their last heartbeat seq, and the open outages (fleet/outages.ts); 4: captured in slices (center-state.ts); 5: histories hold their samples only (no empty room, no ring starts), the de-duplication window its keys as bytes (store/recent-ids.ts)

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

/** Checks a snapshot file's bytes: framing, checksum, then whether this center may use it. Never throws. */
export function decodeSnapshot(buf: Buffer, expect: SnapshotExpectation): Decoded {
  if (buf.length < SNAPSHOT_MAGIC.length || buf.subarray(0, SNAPSHOT_MAGIC.length).toString('latin1') !== SNAPSHOT_MAGIC) return { ok: false, reason: 'not a state snapshot (no VMSNAP header)' };
  const digestEnd = buf.indexOf(10, SNAPSHOT_MAGIC.length);
  if (digestEnd !== SNAPSHOT_MAGIC.length + 64) return { ok: false, reason: 'truncated or malformed (no checksum line)' };
  const digest = buf.subarray(SNAPSHOT_MAGIC.length, digestEnd).toString('latin1');
  const headerEnd = buf.indexOf(10, digestEnd + 1);
  if (headerEnd === -1) return { ok: false, reason: 'truncated (no complete header)' };
  const actual = createHash('sha256').update(buf.subarray(digestEnd + 1)).digest('hex');
  if (actual !== digest) return { ok: false, reason: 'checksum mismatch (the file was truncated or changed after it was written)' };
  let header: SnapshotHeader;
  try {
    const parsed = headerSchema.safeParse(JSON.parse(buf.subarray(digestEnd + 1, headerEnd).toString('utf8')));
    if (!parsed.success) return { ok: false, reason: 'malformed header' };
    header = parsed.data;
  } catch {
    return { ok: false, reason: 'malformed header' };
  }
  const payload = buf.subarray(headerEnd + 1);
  if (payload.length !== header.payload_bytes) return { ok: false, reason: `payload is ${payload.length} bytes, the header says ${header.payload_bytes}` };
  if (header.v !== SNAPSHOT_VERSION) return { ok: false, reason: `format version ${header.v} (this center reads version ${SNAPSHOT_VERSION})` };
  if (header.center_version !== expect.centerVersion) return { ok: false, reason: `written by release ${header.center_version} (this is ${expect.centerVersion})` };
  for (const [k, v] of Object.entries(expect.settings)) {
    if (header.settings[k] !== v) return { ok: false, reason: `taken with ${k} = ${String(header.settings[k])} (now ${String(v)})` };
  }
  return { ok: true, header, payload };
}

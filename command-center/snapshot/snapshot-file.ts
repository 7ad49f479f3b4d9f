/**
 * Reading and writing the state snapshot file. The write is atomic and durable like lib/atomic-file.ts (temp file,
 * fsync, rename, directory fsync) but asynchronous, with the checksum computed in slices that yield to the event
 * loop: a snapshot of a large fleet is tens of MB, and only its serialisation (captureState) may pause requests.
 * Mode 0600: it holds the hashes of join tokens and API tokens.
 */
import { createHash } from 'node:crypto';
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { open, readdir, rename, rm } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { basename, dirname, join } from 'node:path';
import { fsyncDirSync } from '../../lib/atomic-file.js';
import { headerLine, snapshotPrefix, type SnapshotBytes, type SnapshotHeader } from './snapshot-format.js';

export const SNAPSHOT_FILE = 'state.snapshot';
export const SNAPSHOT_MODE = 0o600;
const SLICE = 4 << 20;

const yieldToLoop = () => new Promise<void>((res) => setImmediate(res));

/** Removes the temp files of snapshot writes a crash interrupted (never renamed, so never read). */
export async function removeStaleTemps(path: string): Promise<void> {
  const prefix = `${basename(path)}.tmp-`;
  for (const f of await readdir(dirname(path)).catch(() => [] as string[])) if (f.startsWith(prefix)) await rm(join(dirname(path), f), { force: true });
}

/**
 * The snapshot file opened for reading by position (SnapshotBytes), or undefined when there is none. Start-up reads
 * it in parts, each decoded and dropped before the next is read: read whole, a 50 MiB file's buffer outlived the
 * load (it is only freed by the next full garbage collection) and counted in the center's RSS once listening.
 * Reads are synchronous: they come from the page cache, and nothing else runs before start-up is done. The caller
 * closes it.
 */
export function openSnapshotFile(path: string): (SnapshotBytes & { close(): void }) | undefined {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  // The state dir is locked and the snapshot replaced only by rename: the open file does not change under us.
  const size = fstatSync(fd).size;
  const readInto = (position: number, target: Uint8Array) => {
    for (let done = 0; done < target.length; ) {
      const n = readSync(fd, target, done, target.length - done, position + done);
      if (n === 0) throw new Error(`the file ended at ${position + done} bytes (${size} when opened)`);
      done += n;
    }
  };
  return {
    size,
    read(position, length) {
      // Not from Node's shared pool: a small part kept by a decoded object would keep a pool slab alive.
      const buf = Buffer.allocUnsafeSlow(Math.max(0, Math.min(length, size - position)));
      readInto(position, buf);
      return buf;
    },
    readInto,
    close: () => closeSync(fd),
  };
}

/** Writes header + payload atomically; returns the file's size. */
export async function writeSnapshotFile(path: string, header: SnapshotHeader, payload: readonly Buffer[]): Promise<number> {
  const hash = createHash('sha256').update(headerLine(header));
  for (const part of payload) {
    for (let at = 0; at < part.length; at += SLICE) {
      hash.update(part.subarray(at, Math.min(part.length, at + SLICE)));
      await yieldToLoop();
    }
  }
  const payloadBytes = payload.reduce((n, b) => n + b.length, 0);
  const prefix = snapshotPrefix(header, hash.digest('hex'));
  const tmp = `${path}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
  const fh = await open(tmp, 'wx', SNAPSHOT_MODE);
  try {
    const { bytesWritten } = await fh.writev([prefix, ...payload]);
    if (bytesWritten !== prefix.length + payloadBytes) throw new Error(`short write (${bytesWritten} of ${prefix.length + payloadBytes} bytes)`);
    await fh.chmod(SNAPSHOT_MODE);
    await fh.sync();
  } catch (err) {
    await fh.close().catch(() => undefined);
    await rm(tmp, { force: true });
    throw err;
  }
  await fh.close();
  await rename(tmp, path);
  fsyncDirSync(dirname(path));
  return prefix.length + payloadBytes;
}

/**
 * Start-up from a state snapshot: decides whether the snapshot in the state dir may stand for the log up to its
 * seq and, if so, installs it. Any doubt (no file, bad checksum, truncated, another format version or release,
 * other projection settings, a seq the log does not hold or holds with another line, heartbeat history summarised
 * after it) means a full replay, with one log line saying why. Deleting the snapshot is therefore always safe.
 */
import { createHash } from 'node:crypto';
import type { EnvelopeStore } from '../store/envelope-store.js';
import { checkSnapshot, type SnapshotBytes, type SnapshotExpectation } from './snapshot-format.js';
import { openSnapshotFile, removeStaleTemps } from './snapshot-file.js';
import { prepareRestore, type LedgerStates, type SnapshotParts } from './center-state.js';

export type SnapshotLoad = { used: true; seq: number; lineSha256: string; bytes: number; ms: number; ledgers: LedgerStates } | { used: false; reason: string };

export async function loadSnapshot(opts: {
  file: string;
  store: Pick<EnvelopeStore, 'entryAt' | 'heartbeatSummary'>;
  expect: SnapshotExpectation;
  parts: SnapshotParts;
}): Promise<SnapshotLoad> {
  const t0 = performance.now();
  // Only this center writes here (the state dir is locked), and it has not started a snapshot yet.
  await removeStaleTemps(opts.file);
  let file;
  try {
    file = openSnapshotFile(opts.file);
  } catch (err) {
    return { used: false, reason: `cannot read it: ${(err as Error).message}` };
  }
  if (!file) return { used: false, reason: 'there is none' };
  try {
    return await useSnapshot(file, opts, t0);
  } catch (err) {
    // Reading failed part-way (an I/O error): the live parts are untouched until `apply`, which runs last.
    return { used: false, reason: `cannot read it: ${(err as Error).message}` };
  } finally {
    file.close();
  }
}

async function useSnapshot(file: SnapshotBytes, opts: Parameters<typeof loadSnapshot>[0], t0: number): Promise<SnapshotLoad> {
  // The whole file's checksum first, read in pieces; its parts are then read and decoded one at a time.
  const d = checkSnapshot(file, opts.expect);
  if (!d.ok) return { used: false, reason: d.reason };
  const { seq, line_sha256 } = d.header;
  let entry;
  try {
    entry = await opts.store.entryAt(seq);
  } catch (err) {
    return { used: false, reason: `cannot read the log at its seq ${seq}: ${(err as Error).message}` };
  }
  if (!entry) return { used: false, reason: `it covers seq ${seq}, which this log does not hold (the log ends before it, or was replaced)` };
  if (createHash('sha256').update(entry.line).digest('hex') !== line_sha256) return { used: false, reason: `the log's entry at seq ${seq} is not the one it was taken after (another log?)` };
  const summary = opts.store.heartbeatSummary;
  if (summary && summary.through_seq > seq) return { used: false, reason: `heartbeats up to seq ${summary.through_seq} were summarised after it was taken` };
  let restore;
  try {
    restore = prepareRestore({ src: file, start: d.payloadStart }, opts.parts);
  } catch (err) {
    return { used: false, reason: (err as Error).message };
  }
  if (restore.seq !== seq) return { used: false, reason: `its state is at seq ${restore.seq}, its header says ${seq}` };
  try {
    restore.apply(); // its only failing step runs first and changes nothing
  } catch (err) {
    return { used: false, reason: (err as Error).message };
  }
  return { used: true, seq, lineSha256: line_sha256, bytes: file.size, ms: performance.now() - t0, ledgers: restore.ledgers };
}

/**
 * Offline C2SP tools on a log dir (docs/LEDGER.md, "C2SP checkpoints and tiles"): the verifier key of a log's
 * checkpoints, and the static tile tree (`<out>/<log>/checkpoint`, `tile/<L>/<N>`, `tile/entries/<N>`) that the
 * center serves under /ledger/<log>/, written from the journal so it can be published on any static host.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { z } from 'zod';
import { dirname, join } from 'node:path';
import { openCheckpoint, parseCheckpointText } from '../protocol/checkpoint.js';
import { VaultMeshError } from '../protocol/errors.js';
import { fromHex } from '../protocol/hex.js';
import { MerkleLog, leafHash } from '../protocol/merkle.js';
import { NoteError, ed25519NoteVerifier, formatVerifierKey, parseNote } from '../protocol/signed-note.js';
import { EntryTooLargeError, TILE_WIDTH, encodeEntryBundle, tileHashes, tilePath, tilesForSize } from '../protocol/tiles.js';
import { LineSource } from '../lib/journal/index.js';
import { CHECKPOINT_FILES, type CheckpointLog } from '../protocol/ledger-checkpoints.js';
import { LEDGER_FILES } from '../protocol/ledger-files.js';
import { readProofChain } from '../lib/ledger-files.js';

export interface LogCheckpoint {
  log: CheckpointLog;
  origin: string;
  vkey: string;
  note: string;
  tree_size: number;
  root_hash: string;
}

/**
 * Reads and verifies a log's checkpoint file. The key is `pubkey` (hex) when given, else the key of the chain file's
 * last head (the one the center signed PROOFCHAIN.json with); the checkpoint must verify with it and name the same
 * tree as that head when their sizes agree.
 */
export function readLogCheckpoint(dir: string, log: CheckpointLog, pubkey?: string): LogCheckpoint {
  const file = join(dir, CHECKPOINT_FILES[log]);
  let note: string;
  try {
    note = readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new VaultMeshError('UNREADABLE', `${file} does not exist (written by a center of version ≥ 0.2 with each signed head)`);
    throw err;
  }
  let origin: string;
  try {
    origin = parseCheckpointText(parseNote(note).text).origin;
  } catch (err) {
    throw new VaultMeshError('LEDGER_CORRUPT', `${file}: ${(err as Error).message}`);
  }
  const chain = readProofChain(join(dir, LEDGER_FILES[log].chainFile));
  const last = chain?.heads.at(-1);
  const keyHex = pubkey ?? last?.public_key;
  if (!keyHex) throw new VaultMeshError('USAGE', `no signed head in ${LEDGER_FILES[log].chainFile} to take the key from: give --pubkey`);
  const vkey = formatVerifierKey(origin, fromHex(keyHex, 32)!);
  try {
    const { checkpoint } = openCheckpoint(note, [ed25519NoteVerifier(vkey)], origin);
    const root_hash = checkpoint.rootHash.toString('hex');
    if (last && last.head.tree_size === checkpoint.treeSize && last.head.root_hash !== root_hash) {
      throw new VaultMeshError('LEDGER_MISMATCH', `${file} signs a root other than the last head of ${LEDGER_FILES[log].chainFile} for the same size`);
    }
    return { log, origin, vkey, note, tree_size: checkpoint.treeSize, root_hash };
  } catch (err) {
    if (err instanceof NoteError) throw new VaultMeshError('LEDGER_MISMATCH', `${file}: ${err.message} (key ${keyHex})`);
    throw err;
  }
}

/** True if the log's chain file holds a signed head (its key is what checkpoints are checked with by default). */
export function hasSignedHead(dir: string, log: CheckpointLog): boolean {
  return (readProofChain(join(dir, LEDGER_FILES[log].chainFile))?.heads.length ?? 0) > 0;
}

export interface TilesResult {
  log: CheckpointLog;
  tree_size: number;
  root_hash: string;
  tiles: number;
  bundles: number;
  /** Entry bundles not written: they hold a line over 65,535 bytes (index of the first such line). */
  skipped_bundles: { index: number; leaf_index: number; bytes: number }[];
}

function writeUnder(out: string, rel: string, data: string | Uint8Array): void {
  const path = join(out, rel);
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, data, { mode: 0o644 });
}

/**
 * Writes the static tile tree of one log into `<out>/<log>/`: the checkpoint file as signed by the center, every
 * hash tile and every entry bundle of its tree (full ones, and the partial ones of its size). The journal's first
 * `tree_size` lines must hash to the checkpoint's root, or nothing is written past the check.
 */
/** Calls `fn` with each of the first `limit` complete lines of a journal (a missing file has none); returns the count. */
async function forEachLine(file: string, limit: number, fn: (line: Buffer, index: number) => void): Promise<number> {
  let n = 0;
  const source = new LineSource(file);
  try {
    for (let lines = await source.nextBatch(); lines && n < limit; lines = await source.nextBatch()) {
      for (const line of lines) {
        if (n >= limit) break;
        fn(line.bytes, n++);
      }
    }
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  } finally {
    await source.close();
  }
  return n;
}

export async function writeLogTiles(dir: string, out: string, log: CheckpointLog, pubkey?: string): Promise<TilesResult> {
  const cp = readLogCheckpoint(dir, log, pubkey);
  const size = cp.tree_size;
  const journal = join(dir, LEDGER_FILES[log].journalFile);
  const tree = new MerkleLog({ capacity: Math.max(1024, size) });
  // Two passes, so memory stays at the leaf hashes: check the root first, then write the bundles.
  const read = await forEachLine(journal, size, (line) => tree.append(leafHash(line)));
  if (read < size) throw new VaultMeshError('LEDGER_MISMATCH', `${LEDGER_FILES[log].journalFile} has ${read} lines but the checkpoint signs ${size}`);
  if (tree.root().toString('hex') !== cp.root_hash) {
    throw new VaultMeshError('LEDGER_MISMATCH', `the first ${size} lines of ${LEDGER_FILES[log].journalFile} do not hash to the checkpoint's root: run vaultmesh ledger verify`);
  }

  const base = join(out, log);
  const result: TilesResult = { log, tree_size: size, root_hash: cp.root_hash, tiles: 0, bundles: 0, skipped_bundles: [] };
  for (const t of tilesForSize(size)) {
    writeUnder(base, tilePath(t), tileHashes((s, e) => tree.hashRange(s, e), t.level as number, t.index, t.width));
    result.tiles++;
  }
  let batch: Buffer[] = [];
  const flush = (index: number): void => {
    try {
      writeUnder(base, tilePath({ level: 'entries', index, width: batch.length }), encodeEntryBundle(batch, index * TILE_WIDTH));
      result.bundles++;
    } catch (err) {
      if (!(err instanceof EntryTooLargeError)) throw err;
      result.skipped_bundles.push({ index, leaf_index: err.entryIndex, bytes: err.length });
    }
    batch = [];
  };
  await forEachLine(journal, size, (line, i) => {
    // A copy: the line is a view into the reader's chunk, and the bundle outlives this callback.
    batch.push(Buffer.from(line));
    if (batch.length === TILE_WIDTH) flush(Math.floor(i / TILE_WIDTH));
  });
  if (batch.length > 0) flush(Math.floor(size / TILE_WIDTH));
  // The checkpoint last: a mirror never advertises a tree whose tiles it does not hold yet.
  writeUnder(base, 'checkpoint', cp.note);
  return result;
}

const witnessStatus = z.looseObject({
  tree_size: z.number(),
  witnessed_latest: z.number(),
  witnesses: z.array(z.looseObject({ node_id: z.string(), tree_size: z.number(), timestamp: z.number() })),
  forks: z.array(z.looseObject({ node_id: z.string(), tree_size: z.number() })).default([]),
});
/** `GET /api/ledger/witnesses`. */
export const witnessesAnswer = z.looseObject({ scans: witnessStatus, commands: witnessStatus });
export type WitnessesAnswer = z.infer<typeof witnessesAnswer>;

/** `vaultmesh ledger status`: per log, the latest checkpoint and how many nodes witnessed it. */
export function renderWitnessStatus(a: WitnessesAnswer): string {
  return (['scans', 'commands'] as const)
    .map((log) => {
      const s = a[log];
      const behind = s.witnesses.filter((w) => w.tree_size < s.tree_size).length;
      return `${log}: checkpoint of ${s.tree_size} leaves, witnessed by ${s.witnessed_latest} node${s.witnessed_latest === 1 ? '' : 's'}` +
        (behind ? ` (${behind} more on an older checkpoint)` : '') +
        (s.forks.length ? `; FORK reported by ${s.forks.map((f) => `${f.node_id} (accepted ${f.tree_size})`).join(', ')}: see the ledger_fork incidents` : '') +
        '\n';
    })
    .join('');
}

/**
 * Hash tiles and entry bundles (c2sp.org/tlog-tiles) of a live ledger, for the tree of its latest checkpoint. The
 * hashes come from the ledger's in-memory tree (level-1 and higher tiles are cached perfect subtrees); entries are
 * journal lines reread through `leafLine`, which checks each one still hashes to its leaf.
 */
import { VaultMeshError } from '../../protocol/errors.js';
import { EntryTooLargeError, bundleRange, encodeEntryBundle, tileExists, tileHashes, type TileRef } from '../../protocol/tiles.js';
import type { Ledger } from './ledger.js';

function notInTree(t: TileRef, treeSize: number): VaultMeshError {
  return new VaultMeshError('NOT_FOUND', `no tile ${t.level}/${t.index}${t.width < 256 ? `.p/${t.width}` : ''} in the tree of ${treeSize} leaves`, { status: 404 });
}

/** The bytes of hash tile `t` of the tree of `treeSize` leaves (the latest checkpoint's); 404 if it has none. */
export function readHashTile(ledger: Pick<Ledger, 'hashRange'>, t: TileRef & { level: number }, treeSize: number): Buffer {
  if (!tileExists(t, treeSize)) throw notInTree(t, treeSize);
  return tileHashes((s, e) => ledger.hashRange(s, e), t.level, t.index, t.width);
}

/**
 * The entry bundle `t` of the tree of `treeSize` leaves. A journal line longer than 65,535 bytes cannot be put in
 * a bundle (uint16 lengths): the bundle holding it is refused with LEDGER_ENTRY_TOO_LARGE naming the leaf, rather
 * than served cut or re-encoded (which would no longer hash to the tile); that line is served whole by
 * `GET /api/ledger/proof/:id`.
 */
export async function readEntryBundle(ledger: Pick<Ledger, 'leafLine'>, t: TileRef, treeSize: number): Promise<Buffer> {
  if (!tileExists(t, treeSize)) throw notInTree(t, treeSize);
  const { start, end } = bundleRange(t);
  const lines: Buffer[] = [];
  for (let i = start; i < end; i++) lines.push(await ledger.leafLine(i));
  try {
    return encodeEntryBundle(lines, start);
  } catch (err) {
    if (err instanceof EntryTooLargeError) {
      throw new VaultMeshError('LEDGER_ENTRY_TOO_LARGE', `${err.message}: this bundle cannot be served; fetch the line with GET /api/ledger/proof/<id>`, {
        status: 422,
        details: [{ path: 'leaf_index', message: `${err.entryIndex} (${err.length} bytes)` }],
      });
    }
    throw err;
  }
}

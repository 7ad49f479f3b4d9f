/**
 * What a witness decides when a log shows it a new checkpoint (c2sp.org/tlog-witness semantics): accept it only if
 * it extends the checkpoint the witness last accepted, as shown by an RFC 6962 consistency proof. A smaller tree, a
 * different root at the same size, or a proof that does not hold is a fork: the witness keeps its old checkpoint
 * and must not cosign. Pure; the signature on the new checkpoint is checked before this.
 */
import { EMPTY_ROOT, verifyConsistency } from './merkle.js';

export interface TreeView {
  treeSize: number;
  rootHash: Uint8Array;
}

export type WitnessVerdict =
  | { ok: true; grew: boolean }
  | { ok: false; reason: 'smaller' | 'different-root' | 'bad-proof'; message: string };

/** Checks that `next` extends `last` (undefined: nothing accepted yet, i.e. the empty tree) with `proof`. */
export function checkExtends(last: TreeView | undefined, next: TreeView, proof: readonly Uint8Array[]): WitnessVerdict {
  const old = last ?? { treeSize: 0, rootHash: EMPTY_ROOT };
  if (next.treeSize < old.treeSize) return { ok: false, reason: 'smaller', message: `the log shows size ${next.treeSize}, smaller than the ${old.treeSize} already accepted` };
  if (next.treeSize === old.treeSize) {
    if (Buffer.compare(Buffer.from(next.rootHash), Buffer.from(old.rootHash)) !== 0) {
      return { ok: false, reason: 'different-root', message: `the log shows another root for size ${next.treeSize} than the one already accepted` };
    }
    return { ok: true, grew: false };
  }
  if (!verifyConsistency(old.treeSize, next.treeSize, old.rootHash, next.rootHash, proof)) {
    return { ok: false, reason: 'bad-proof', message: `no valid consistency proof from size ${old.treeSize} to ${next.treeSize}: the new tree does not extend the accepted one` };
  }
  return { ok: true, grew: true };
}

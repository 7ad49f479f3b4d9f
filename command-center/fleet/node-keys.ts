/**
 * A node's key history: the reducer of `node_key` envelopes and the pure rules of agent key rotation (which key
 * may sign, how long a replaced key keeps working, what a repeated or conflicting rotation gets). The overlap end
 * is fixed in the envelope when the center journals it, so replay and snapshots give the same keys at any time.
 */
import type { EnvelopeOf } from '../../protocol/envelope-kinds.js';
import type { NodeKeyStatement } from '../../protocol/node-key-rotation.js';
import { VaultMeshError } from '../../protocol/errors.js';
import type { FleetState, NodeRecord } from './fleet-state.js';

/** A key the node used before, and the rotation that replaced it. */
export interface ReplacedKey {
  key_id: string;
  public_key: string;
  replaced_by: string;
  replaced_at: string;
  /** Requests signed by this key are accepted until then (the overlap window). */
  valid_until: string;
  /** Seq of the `node_key` envelope. */
  seq: number;
}

/**
 * Replaced keys kept per node, newest last. Each is one signature check when a request does not verify under the
 * current key (to tell NODE_KEY_ROTATED from UNKNOWN_NODE), so the list is bounded; older rotations stay in the journal.
 */
export const MAX_REPLACED_KEYS = 8;

export function applyNodeKey(state: FleetState, env: EnvelopeOf<'node_key'>): void {
  const node = env.node_id ? state.nodes.get(env.node_id) : undefined;
  const b = env.body;
  // Validated against this very state when journaled; a line that no longer fits (a hand-edited journal) changes nothing.
  if (!node || node.key_id !== b.old_key_id) return;
  const replaced = (node.replaced_keys ??= []);
  replaced.push({ key_id: b.old_key_id, public_key: b.old_public_key, replaced_by: b.new_key_id, replaced_at: env.ts, valid_until: b.old_key_valid_until, seq: env.seq });
  if (replaced.length > MAX_REPLACED_KEYS) replaced.splice(0, replaced.length - MAX_REPLACED_KEYS);
  node.public_key = b.new_public_key;
  node.key_id = b.new_key_id;
}

export function isWithinOverlap(key: ReplacedKey, nowMs: number): boolean {
  return nowMs < Date.parse(key.valid_until);
}

/** The refusal for a request signed by a replaced key after its overlap window. */
export function nodeKeyRotatedError(nodeId: string, key: ReplacedKey): VaultMeshError {
  return new VaultMeshError(
    'NODE_KEY_ROTATED',
    `node ${nodeId}: request signed by key ${key.key_id}, which was replaced by ${key.replaced_by} at ${key.replaced_at} (accepted until ${key.valid_until}); ` +
      `this agent is running with an old copy of its state dir: restore the state dir that holds key ${key.replaced_by}, or re-enroll (vaultmesh nodes revoke ${nodeId}, then a new join token)`,
    { status: 401, details: [{ message: `key ${key.key_id} replaced by ${key.replaced_by}`, key_id: key.key_id, replaced_by: key.replaced_by, replaced_at: key.replaced_at }] },
  );
}

/** A key of `node` that may sign a receipt or cosignature now: the current one, or a replaced one inside its window. */
export function acceptedPublicKey(node: NodeRecord, keyId: string, nowMs: number): string | undefined {
  if (keyId === node.key_id) return node.public_key;
  const r = node.replaced_keys?.find((k) => k.key_id === keyId);
  return r && isWithinOverlap(r, nowMs) ? r.public_key : undefined;
}

export type RotationDecision = { kind: 'new' } | { kind: 'done'; rotation: ReplacedKey };

/**
 * What a rotation request gets, given the node as the center knows it and the key that signed the request.
 * - `new`: the statement replaces the current key, and that key signed the request.
 * - `done`: this exact rotation (same old key, same new key) is already journaled: a retry, answered 200 — signed by
 *   the old key inside its window, or by the new key (an agent that crashed before it swapped its key files).
 * - Rotations chain: B→C is a new rotation once A→B is done, and A keeps its own window. A different rotation of a
 *   key that was already replaced (A→C after A→B) is a fork and is refused (KEY_ROTATION_CONFLICT): only one
 *   successor per key, so two copies of one state dir cannot both carry on.
 */
export function decideRotation(node: NodeRecord, signerKeyId: string, s: NodeKeyStatement): RotationDecision {
  if (s.node_id !== node.node_id) throw new VaultMeshError('NODE_MISMATCH', `statement names node ${s.node_id}, not the signing node ${node.node_id}`, { status: 403 });
  const done = node.replaced_keys?.find((k) => k.key_id === s.old_key_id);
  if (done) {
    if (done.replaced_by === s.new_key_id) return { kind: 'done', rotation: done };
    throw new VaultMeshError('KEY_ROTATION_CONFLICT', `key ${s.old_key_id} of node ${node.node_id} was already replaced by ${done.replaced_by} at ${done.replaced_at}; rotate from the current key ${node.key_id}`, { status: 409 });
  }
  if (s.old_key_id !== node.key_id) {
    throw new VaultMeshError('KEY_ROTATION_CONFLICT', `the statement replaces key ${s.old_key_id}, which is not a key of node ${node.node_id} (current: ${node.key_id})`, { status: 409 });
  }
  if (signerKeyId !== node.key_id) {
    throw new VaultMeshError('BAD_SIGNATURE', `a rotation must be signed by the key it replaces (${node.key_id}), not ${signerKeyId}`, { status: 401 });
  }
  return { kind: 'new' };
}

/** The rotation history shown on `GET /api/nodes/:id`, the console and `vaultmesh nodes show`, newest first. */
export function keyRotations(node: NodeRecord): Array<{ old_key_id: string; new_key_id: string; at: string; old_key_valid_until: string; seq: number }> {
  return (node.replaced_keys ?? []).map((k) => ({ old_key_id: k.key_id, new_key_id: k.replaced_by, at: k.replaced_at, old_key_valid_until: k.valid_until, seq: k.seq })).reverse();
}

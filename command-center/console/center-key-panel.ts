/**
 * What the console shows of the center key: its id and recent rotations (fleet overview), and for one node the
 * center keys its agent says it trusts (node detail), so an agent that missed a rotation is visible at a glance.
 * Pure: from the fleet state's rotation history (keys/center-key-history.ts) and the node's last heartbeat.
 */
import { inWindow } from '../../protocol/center-key-rotation.js';
import type { FleetState, NodeRecord } from '../fleet/fleet-state.js';

export interface CenterKeyPanel {
  keyId: string;
  /** When the current key took over (`—` before any rotation). */
  since: string;
  rotations: Array<{ serial: number; from: string; to: string; at: string; by: string; overlapUntil: string; inOverlap: boolean }>;
}

export const ROTATIONS_SHOWN = 3;

export function centerKeyPanel(state: Pick<FleetState, 'centerKeys'>, currentKeyId: string, nowMs: number): CenterKeyPanel {
  const all = [...(state.centerKeys?.rotations ?? [])].sort((a, b) => b.statement.serial - a.statement.serial);
  const now = new Date(nowMs);
  return {
    keyId: currentKeyId,
    since: all[0]?.statement.effective_at ?? '—',
    rotations: all.slice(0, ROTATIONS_SHOWN).map((r) => ({
      serial: r.statement.serial,
      from: r.statement.old_key_id,
      to: r.statement.new_key_id,
      at: r.statement.effective_at,
      by: r.author,
      overlapUntil: r.statement.overlap_until,
      inOverlap: inWindow(r.statement, now),
    })),
  };
}

/** The center keys a node's agent trusts, as its last heartbeat says (older agents do not say: undefined). */
export function nodeCenterKeys(node: Pick<NodeRecord, 'last_heartbeat'>, currentKeyId: string): { ids: string[]; current: boolean } | undefined {
  const ids = node.last_heartbeat?.center_key_ids;
  return ids ? { ids: [...ids], current: ids.includes(currentKeyId) } : undefined;
}

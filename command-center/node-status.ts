/**
 * The status pill of a node, a pure function of its record and the time. Enrollment decides first; an approved
 * node is OFFLINE when it has not been heard from for `offlineAfter` heartbeat intervals, ATTN when late or when
 * its last heartbeat reports failing services or tunnel. (The attention model refines ATTN/CRIT with reasons.)
 */
import type { NodeRecord } from './fleet-state.js';

export type NodeStatus = 'ok' | 'attn' | 'crit' | 'pending' | 'offline' | 'rejected' | 'revoked';

export interface StatusPolicy {
  heartbeatIntervalMs: number;
  lateAfter?: number;
  offlineAfter?: number;
}

export function nodeStatus(node: NodeRecord, nowMs: number, policy: StatusPolicy): NodeStatus {
  if (node.enrollment !== 'approved') return node.enrollment;
  if (!node.last_seen) return 'offline';
  const age = nowMs - Date.parse(node.last_seen);
  if (age > (policy.offlineAfter ?? 5) * policy.heartbeatIntervalMs) return 'offline';
  if (age > (policy.lateAfter ?? 2) * policy.heartbeatIntervalMs) return 'attn';
  const hb = node.last_heartbeat;
  if (hb && (!hb.services_ok || !hb.cloudflare_ok)) return 'attn';
  return 'ok';
}

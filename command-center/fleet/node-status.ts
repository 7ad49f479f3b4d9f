/**
 * The status pill of a node, a pure function of its record and the time. Enrollment decides first; an approved
 * node is OFFLINE when it has not been heard from for `offlineAfter` heartbeat intervals (or ever); otherwise the
 * attention model (attention.ts) is the source of truth for OK / ATTN / CRIT.
 */
import { assessNode, type AttentionPolicy } from '../ops/attention.js';
import type { NodeRecord } from './fleet-state.js';
import type { NodeStatus } from '../../protocol/node-statuses.js';

export type { NodeStatus };

export interface StatusPolicy extends AttentionPolicy {
  /** Alias of `staleAttnAfter` (heartbeat intervals before a late node needs attention). */
  lateAfter?: number;
  offlineAfter?: number;
}

export function nodeStatus(node: NodeRecord, nowMs: number, policy: StatusPolicy): NodeStatus {
  if (node.enrollment !== 'approved') return node.enrollment;
  if (!node.last_seen) return 'offline';
  const age = nowMs - Date.parse(node.last_seen);
  if (age > offlineAfterMs(policy)) return 'offline';
  return assessNode(node, nowMs, attentionPolicyOf(policy)).status;
}

/** The silence after which an approved node is OFFLINE (and an outage is declared: outages.ts). */
export function offlineAfterMs(policy: StatusPolicy): number {
  return (policy.offlineAfter ?? policy.staleCritAfter ?? 5) * policy.heartbeatIntervalMs;
}

/** `lateAfter` as `staleAttnAfter`, derived once per policy object (a fleet-wide pass asks once per node). */
const derived = new WeakMap<StatusPolicy, AttentionPolicy>();
function attentionPolicyOf(policy: StatusPolicy): AttentionPolicy {
  if (policy.lateAfter === undefined || policy.staleAttnAfter !== undefined) return policy;
  let p = derived.get(policy);
  if (!p) derived.set(policy, (p = { ...policy, staleAttnAfter: policy.lateAfter }));
  return p;
}

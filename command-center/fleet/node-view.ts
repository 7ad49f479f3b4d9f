/** The JSON shapes of nodes on the operator API (`GET /api/nodes`, `GET /api/nodes/:id`). */
import type { NodeRecord } from './fleet-state.js';
import { nodeStatus, type StatusPolicy } from './node-status.js';
import { assessNode } from '../ops/attention.js';
import { keyRotations } from './node-keys.js';
import type { NodeOutage } from './outages.js';

export function nodeSummary(node: NodeRecord, nowMs: number, policy: StatusPolicy) {
  const hb = node.last_heartbeat;
  return {
    node_id: node.node_id,
    hostname: node.hostname,
    os_profile: node.os_profile,
    status: nodeStatus(node, nowMs, policy),
    enrollment: node.enrollment,
    last_seen: node.last_seen ?? null,
    first_seen: node.first_seen ?? null,
    agent_version: node.agent_version,
    key_id: node.key_id,
    tags: node.tags,
    heartbeat_count: node.heartbeat_count,
    cloudflare_ok: hb?.cloudflare_ok ?? null,
    services_ok: hb?.services_ok ?? null,
    metrics: hb?.metrics ?? null,
    findings: node.latest_scan?.summary ?? null,
    // A maintenance window covers the node now (its silenced reasons are in the detail's `attention.silenced`).
    in_maintenance: policy.inMaintenance?.(node, nowMs) ?? false,
  };
}

export function nodeDetail(node: NodeRecord, nowMs: number, policy: StatusPolicy, outage?: NodeOutage) {
  return {
    ...nodeSummary(node, nowMs, policy),
    public_key: node.public_key,
    // Newest first; `old_key_valid_until` is when the replaced key stopped (or stops) being accepted.
    key_rotations: keyRotations(node),
    facts: node.facts,
    enrolled_at: node.enrolled_at,
    decided_at: node.decided_at ?? null,
    decided_by: node.decided_by ?? null,
    last_heartbeat: node.last_heartbeat ?? null,
    latest_scan: node.latest_scan ?? null,
    // Why the status pill says ATTN or CRIT, so an API client (and `vaultmesh nodes show`) need not guess.
    attention: assessNode(node, nowMs, policy),
    // The open outage (declared offline, no rejoin yet); `returned_at` once its first heartbeat after it arrived.
    outage: outageView(outage),
    history: node.history.samples().map((s) => ({ ...s, t: new Date(s.t).toISOString() })),
  };
}

/** An open outage as the API shows it (node detail, attention items); null when the node has none. */
export function outageView(outage: NodeOutage | undefined) {
  return outage
    ? { offline_seq: outage.offline_seq, offline_at: outage.offline_ts, last_heartbeat_seq: outage.last_heartbeat_seq, last_heartbeat_at: outage.last_heartbeat_ts, returned_at: outage.returned?.ts ?? null }
    : null;
}

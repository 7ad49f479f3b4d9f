/** The JSON shapes of nodes on the operator API (`GET /api/nodes`, `GET /api/nodes/:id`). */
import type { NodeRecord } from './fleet-state.js';
import { nodeStatus, type StatusPolicy } from './node-status.js';
import { assessNode } from '../ops/attention.js';

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

export function nodeDetail(node: NodeRecord, nowMs: number, policy: StatusPolicy) {
  return {
    ...nodeSummary(node, nowMs, policy),
    public_key: node.public_key,
    facts: node.facts,
    enrolled_at: node.enrolled_at,
    decided_at: node.decided_at ?? null,
    decided_by: node.decided_by ?? null,
    last_heartbeat: node.last_heartbeat ?? null,
    latest_scan: node.latest_scan ?? null,
    // Why the status pill says ATTN or CRIT, so an API client (and `vaultmesh nodes show`) need not guess.
    attention: assessNode(node, nowMs, policy),
    history: node.history.samples().map((s) => ({ ...s, t: new Date(s.t).toISOString() })),
  };
}

/**
 * Fleet state and its reducer. `applyEnvelope(state, envelope)` is deterministic and does no IO: replaying the
 * journals through it at start yields the same state as the live process had. (It updates `state` in place
 * rather than copying: at a million heartbeats per replay, copying maps would dominate start-up.)
 */
import type { Envelope } from '../../protocol/envelope.js';
import type { Heartbeat } from '../../protocol/agent-api.js';
import { readEnvelope, type EnvelopeOf } from '../../protocol/envelope-kinds.js';
import { HeartbeatHistory } from './heartbeat-history.js';
import { applyScan, type LatestScan } from './scan-state.js';
import { applyCommandEnvelope, applyReceiptEnvelope, createCommandState, type CommandState } from '../commands/command-store.js';
import { applyAttentionEvent, type AttentionRecord } from '../ops/attention.js';
import { applyIncidentEvent, applyTagEvent, createIncidentState, type IncidentState, type NodeIncidentRef } from './incidents.js';
import { applyApiTokenEnvelope, createApiTokenState, type ApiTokenState } from '../auth/api-tokens.js';
import { applyNodeKey, type ReplacedKey } from './node-keys.js';
import { applyCenterKeyEnvelope, type CenterKeyHistory } from '../keys/center-key-history.js';
import { applyOfflineEvent, applyRejoinEvent, noteHeartbeat, type OutageMap } from './outages.js';
import { applyMaintenanceEvent, countHeld, type MaintenanceState } from '../ops/maintenance.js';

export type EnrollmentStatus = 'pending' | 'approved' | 'rejected' | 'revoked';

export interface NodeRecord {
  node_id: string;
  hostname: string;
  os_profile: string;
  enrollment: EnrollmentStatus;
  public_key: string;
  key_id: string;
  agent_version: string;
  facts: Record<string, unknown>;
  enrolled_at: string;
  decided_at?: string;
  decided_by?: string;
  first_seen?: string;
  last_seen?: string;
  last_heartbeat?: Heartbeat;
  /** The seq of that heartbeat (an outage names it: outages.ts). */
  last_heartbeat_seq?: number;
  heartbeat_count: number;
  history: HeartbeatHistory;
  latest_scan?: LatestScan;
  tags: string[];
  /** Keys this node rotated away from (`node_key` envelopes, node-keys.ts), oldest first; reset by a re-enrollment. */
  replaced_keys?: ReplacedKey[];
  /** Open incidents about this node (maintained by incidents.ts, read by the attention model). */
  open_incidents?: NodeIncidentRef[];
}

export interface JoinTokenRecord {
  token_id: string;
  token_sha256: string;
  label: string;
  created_at: string;
  created_by: string;
  expires_at: string;
  uses: number;
  used: number;
  revoked: boolean;
}

export interface FleetState {
  nodes: Map<string, NodeRecord>;
  joinTokens: Map<string, JoinTokenRecord>;
  /** token hash → token id, for enrollment lookups. */
  joinTokenByHash: Map<string, string>;
  lastSeq: number;
  counts: Record<string, number>;
  historySize: number;
  /** Open incidents and their acks (incidents.ts). */
  incidents: IncidentState;
  /** Last journaled attention status per node (attention.ts). */
  attention: Map<string, AttentionRecord>;
  /** Signed commands and their receipts (command-store.ts). */
  commands: CommandState;
  /** Scoped API tokens (api-tokens.ts); created on the first `api_token` envelope. */
  apiTokens?: ApiTokenState;
  /** Center key rotations (keys/center-key-history.ts); created on the first `center_key` envelope. */
  centerKeys?: CenterKeyHistory;
  /** Open outages: nodes declared offline and not rejoined yet (outages.ts). */
  outages: OutageMap;
  /** Maintenance windows (ops/maintenance.ts); created on the first `maintenance` envelope. */
  maintenance?: MaintenanceState;
}

export function createFleetState(opts: { historySize?: number; maxOpenIncidents?: number } = {}): FleetState {
  return {
    nodes: new Map(),
    joinTokens: new Map(),
    joinTokenByHash: new Map(),
    lastSeq: 0,
    counts: {},
    historySize: opts.historySize ?? 120,
    incidents: createIncidentState(opts.maxOpenIncidents),
    attention: new Map(),
    commands: createCommandState(),
    outages: new Map(),
  };
}

/**
 * Bodies are read through `readEnvelope`, which trusts lines the center wrote (they were validated before they
 * were journaled); kinds this version does not know are counted and otherwise skipped.
 */
export function applyEnvelope(state: FleetState, env: Envelope): void {
  state.lastSeq = env.seq;
  state.counts[env.kind] = (state.counts[env.kind] ?? 0) + 1;
  const e = readEnvelope(env);
  if (!e) return;
  countHeld(state, env);
  switch (e.kind) {
    case 'heartbeat':
      return applyHeartbeat(state, e);
    case 'enrollment':
      return applyEnrollment(state, e);
    case 'join_token':
      return applyJoinToken(state, e);
    case 'scan':
      return applyScan(state, e);
    case 'incident':
    case 'ack':
    case 'resolve':
      return applyIncidentEvent(state, e);
    case 'tag':
      return applyTagEvent(state, e);
    case 'attention':
      return applyAttentionEvent(state, e);
    case 'command':
      return applyCommandEnvelope(state.commands, e);
    case 'receipt':
      return applyReceiptEnvelope(state.commands, e);
    case 'api_token':
      return applyApiTokenEnvelope((state.apiTokens ??= createApiTokenState()), e);
    case 'node_key':
      return applyNodeKey(state, e);
    case 'center_key':
      return applyCenterKeyEnvelope((state.centerKeys ??= { rotations: [] }), e);
    case 'offline':
      return applyOfflineEvent(state.outages, e, e.node_id ? state.nodes.get(e.node_id) : undefined);
    case 'rejoin':
      return applyRejoinEvent(state.outages, e);
    case 'maintenance':
      return applyMaintenanceEvent(state, e);
    case 'note':
      return;
  }
}

function applyHeartbeat(state: FleetState, env: EnvelopeOf<'heartbeat'>): void {
  const node = env.node_id ? state.nodes.get(env.node_id) : undefined;
  if (!node) return; // only enrolled nodes can produce heartbeats; an orphan line changes nothing
  if (state.outages.size) noteHeartbeat(state.outages, env);
  node.first_seen ??= env.ts;
  node.heartbeat_count++;
  takeLastHeartbeat(node, env.seq, env.ts, env.body);
}

/**
 * What a node's newest heartbeat sets on its record. Also used after a replay that started past a silent node's last
 * heartbeat, from the copy the heartbeat summary keeps (store/heartbeat-segments.ts).
 */
export function takeLastHeartbeat(node: NodeRecord, seq: number, ts: string, hb: Heartbeat): void {
  node.last_heartbeat = hb;
  node.last_heartbeat_seq = seq;
  node.hostname = hb.hostname;
  node.agent_version = hb.agent_version;
  node.last_seen = ts;
  const m = hb.metrics;
  node.history.push({
    t: Date.parse(ts),
    load1: m.load[0],
    mem_used: m.mem_used_bytes,
    mem_total: m.mem_total_bytes,
    disk_used: m.disk_used_bytes,
    disk_total: m.disk_total_bytes,
  });
}

function applyEnrollment(state: FleetState, env: EnvelopeOf<'enrollment'>): void {
  const id = env.node_id;
  if (!id) return;
  const node = state.nodes.get(id);
  const b = env.body;
  switch (b.action) {
    case 'request': {
      const t = state.joinTokens.get(b.token_id);
      if (t) t.used++;
      const record: NodeRecord = {
        node_id: id,
        hostname: b.hostname,
        os_profile: b.os_profile,
        enrollment: 'pending',
        public_key: b.public_key,
        key_id: b.key_id,
        agent_version: b.agent_version,
        facts: b.facts ?? {},
        enrolled_at: env.ts,
        heartbeat_count: node?.heartbeat_count ?? 0,
        history: node?.history ?? new HeartbeatHistory(state.historySize),
        tags: node?.tags ?? [],
        ...(node?.open_incidents ? { open_incidents: node.open_incidents } : {}),
        ...(node?.first_seen ? { first_seen: node.first_seen } : {}),
        ...(node?.last_seen ? { last_seen: node.last_seen } : {}),
        ...(node?.last_heartbeat_seq !== undefined ? { last_heartbeat_seq: node.last_heartbeat_seq } : {}),
      };
      if (b.auto_approved === true) {
        record.enrollment = 'approved';
        record.decided_at = env.ts;
        // The request's author is the node itself; the decision was the center's --auto-approve setting.
        record.decided_by = 'auto-approve';
      }
      state.nodes.set(id, record);
      return;
    }
    case 'approve':
    case 'reject':
    case 'revoke':
      if (!node) return;
      node.enrollment = b.action === 'approve' ? 'approved' : b.action === 'reject' ? 'rejected' : 'revoked';
      node.decided_at = env.ts;
      node.decided_by = env.author;
      return;
  }
}

function applyJoinToken(state: FleetState, env: EnvelopeOf<'join_token'>): void {
  const b = env.body;
  if (b.action === 'create') {
    const rec: JoinTokenRecord = {
      token_id: b.token_id,
      token_sha256: b.token_sha256,
      label: b.label ?? '',
      created_at: env.ts,
      created_by: env.author,
      expires_at: b.expires_at,
      uses: b.uses,
      used: 0,
      revoked: false,
    };
    state.joinTokens.set(rec.token_id, rec);
    state.joinTokenByHash.set(rec.token_sha256, rec.token_id);
  } else if (b.action === 'revoke') {
    const t = state.joinTokens.get(b.token_id);
    if (t) t.revoked = true;
  }
}

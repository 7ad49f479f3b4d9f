/**
 * Outages: when an approved node went silent long enough to be offline, and when it came back. Pure: the reducers
 * for the journaled `offline` and `rejoin` envelopes (so replay and a state snapshot rebuild the open outages), the
 * note a heartbeat leaves on an open outage, and `outageActions`, which says what the center should journal now.
 * outage-monitor.ts is the IO shell that runs it on the leader.
 *
 * Exactly once per outage: an outage is named by the node's last heartbeat before it (`offline:<node>:<seq>`), and
 * its return by the `offline` envelope's seq (`rejoin:<node>:<seq>`). Those are the envelope ids, so a second
 * declaration of the same outage (a restart before the first one was applied, another replica that leads next) is
 * refused by the store as a duplicate id; and an open outage in state is never declared again.
 */
import type { EnvelopeOf } from '../../protocol/envelope-kinds.js';
import type { OutboxReport } from '../../protocol/agent-api.js';
import type { OfflineBody, RejoinBody } from '../../protocol/outage-events.js';
import type { NodeRecord } from './fleet-state.js';

export interface NodeOutage {
  /** The `offline` envelope. */
  offline_seq: number;
  offline_ts: string;
  last_heartbeat_seq: number;
  last_heartbeat_ts: string;
  /** Set by the first heartbeat after the outage: the node is back, and its outbox report since (null: none). */
  returned?: { seq: number; ts: string; report: OutboxReport | null };
}

/** Open outages by node id (a node with none is not in the map). */
export type OutageMap = Map<string, NodeOutage>;

/**
 * `node`: its record as the log stands just before this envelope. A heartbeat journaled after the one the outage
 * names but before the `offline` itself (it raced the declaration: it was in flight, or committed on another replica
 * the leader had not applied yet) is already the return.
 */
export function applyOfflineEvent(outages: OutageMap, env: EnvelopeOf<'offline'>, node: NodeRecord | undefined): void {
  if (!env.node_id) return;
  const outage: NodeOutage = {
    offline_seq: env.seq,
    offline_ts: env.ts,
    last_heartbeat_seq: env.body.last_heartbeat_seq,
    last_heartbeat_ts: env.body.last_heartbeat_ts,
  };
  if (node?.last_heartbeat_seq !== undefined && node.last_heartbeat_seq > outage.last_heartbeat_seq && node.last_seen) {
    outage.returned = { seq: node.last_heartbeat_seq, ts: node.last_seen, report: node.last_heartbeat?.outbox ?? null };
  }
  outages.set(env.node_id, outage);
}

export function applyRejoinEvent(outages: OutageMap, env: EnvelopeOf<'rejoin'>): void {
  if (!env.node_id) return;
  if (outages.get(env.node_id)?.offline_seq === env.body.offline_seq) outages.delete(env.node_id);
}

/** A heartbeat of a node with an open outage: the first one marks the return; later ones update the outbox report. */
export function noteHeartbeat(outages: OutageMap, env: EnvelopeOf<'heartbeat'>): void {
  const o = env.node_id ? outages.get(env.node_id) : undefined;
  if (!o || env.seq <= o.last_heartbeat_seq) return;
  const report = env.body.outbox ?? null;
  if (!o.returned) o.returned = { seq: env.seq, ts: env.ts, report };
  // The newest report until one says the backlog is delivered: that one holds the count (the agent starts counting
  // again after it), even when later heartbeats are applied before the rejoin is journaled (a lagging or new leader).
  else if (report && o.returned.report?.queued !== 0) o.returned.report = report;
}

export type OutageAction = { kind: 'offline'; id: string; body: OfflineBody } | { kind: 'rejoin'; id: string; body: RejoinBody };

export const offlineEventId = (nodeId: string, lastHeartbeatSeq: number): string => `offline:${nodeId}:${lastHeartbeatSeq}`;
export const rejoinEventId = (nodeId: string, offlineSeq: number): string => `rejoin:${nodeId}:${offlineSeq}`;

/** One per evaluation pass (a sweep makes one for all nodes); not changed after use. */
export interface OutageContext {
  nowMs: number;
  /** Silence after which an approved node is offline (node-status.ts `offlineAfterMs`). */
  thresholdMs: number;
  /** When this center began declaring outages (its start as leader): an outage due before it is declared late. */
  sinceMs: number;
}

const seconds = (ms: number) => Math.max(0, Math.round(ms) / 1000);

/**
 * Whether a node's last heartbeat is older than the threshold. A sweep asks this of every node, so the cut-off is
 * made once per context as an ISO string and compared with the journal's own `ts` strings (the center writes them
 * with `toISOString()`, which orders like the time); any other shape is parsed.
 */
const cutoffs = new WeakMap<OutageContext, string>();
function isSilent(lastSeen: string | undefined, ctx: OutageContext): boolean {
  if (lastSeen === undefined) return false;
  if (lastSeen.length === 24 && lastSeen.charCodeAt(23) === 90 /* Z */) {
    let cutoff = cutoffs.get(ctx);
    if (cutoff === undefined) cutoffs.set(ctx, (cutoff = new Date(ctx.nowMs - ctx.thresholdMs).toISOString()));
    return lastSeen < cutoff;
  }
  return ctx.nowMs - Date.parse(lastSeen) > ctx.thresholdMs;
}

/**
 * What to journal about one node now, in order. A returning node gets its `rejoin` once its agent reports an empty
 * outbox (so the count is its whole backlog), at once when the agent does not report (count unknown), or, when it
 * falls silent again before draining, with what arrived (`interrupted`) and then a new `offline`. Nodes never heard
 * from have no heartbeat to name and are not declared (the console shows them as waiting).
 */
export function outageActions(node: NodeRecord, outage: NodeOutage | undefined, ctx: OutageContext): OutageAction[] {
  if (node.enrollment !== 'approved') return [];
  const silent = isSilent(node.last_seen, ctx);
  const out: OutageAction[] = [];
  let open = outage !== undefined;
  const back = outage?.returned;
  if (outage && back) {
    const report = back.report;
    const state: RejoinBody['outbox'] | undefined = report === null ? 'unknown' : report.queued === 0 ? 'drained' : silent ? 'interrupted' : undefined;
    if (state) {
      out.push({
        kind: 'rejoin',
        id: rejoinEventId(node.node_id, outage.offline_seq),
        body: {
          offline_seq: outage.offline_seq,
          last_heartbeat_seq: outage.last_heartbeat_seq,
          last_heartbeat_ts: outage.last_heartbeat_ts,
          first_heartbeat_seq: back.seq,
          first_heartbeat_ts: back.ts,
          gap_s: seconds(Date.parse(back.ts) - Date.parse(outage.last_heartbeat_ts)),
          delivered: report === null ? null : report.delivered,
          outbox: state,
        },
      });
      open = false;
    }
  }
  if (!open && silent && node.last_heartbeat_seq !== undefined && node.last_seen && node.last_heartbeat_seq !== outage?.last_heartbeat_seq) {
    const lastMs = Date.parse(node.last_seen);
    const silentMs = ctx.nowMs - lastMs;
    const dueMs = lastMs + ctx.thresholdMs;
    out.push({
      kind: 'offline',
      id: offlineEventId(node.node_id, node.last_heartbeat_seq),
      body: {
        last_heartbeat_seq: node.last_heartbeat_seq,
        last_heartbeat_ts: node.last_seen,
        silent_s: seconds(silentMs),
        threshold_s: seconds(ctx.thresholdMs),
        due_at: new Date(dueMs).toISOString(),
        declared_late: dueMs < ctx.sinceMs,
      },
    });
  }
  return out;
}

/**
 * The attention model: a pure function from a node record and the time to OK / ATTN / CRIT with reasons, and the
 * reducer for journaled `attention` transitions. No IO here; `attention-monitor.ts` decides when to evaluate and
 * journals transitions.
 */
import type { EnvelopeOf } from '../../protocol/envelope-kinds.js';
import type { AttentionBody, AttentionReason, AttentionStatus } from '../../protocol/center-events.js';
import type { FleetState, NodeRecord } from '../fleet/fleet-state.js';

export type { AttentionBody, AttentionReason, AttentionStatus };
export type ReasonSeverity = Exclude<AttentionStatus, 'ok'>;

export interface Assessment {
  status: AttentionStatus;
  reasons: AttentionReason[];
  /** Reasons a maintenance window keeps out of the status (present only when one covers the node). */
  silenced?: AttentionReason[];
}

/**
 * What a maintenance window silences: the signs of planned work on a host (it stops reporting, services and the
 * tunnel go down, the agent is upgraded). Disk and memory pressure, scan findings, file-integrity drift and open
 * incidents still count: they outlast the window, and a window must not become a blind spot for a compromise.
 */
export const MAINTENANCE_SILENCED: ReadonlySet<string> = new Set(['STALE', 'SERVICES_FAILED', 'CLOUDFLARE_DOWN', 'AGENT_VERSION_DRIFT']);

export interface AssessOptions {
  /** A maintenance window covers the node now (ops/maintenance.ts). */
  inMaintenance?: boolean;
}

export interface AttentionPolicy {
  heartbeatIntervalMs: number;
  /** Heartbeat intervals without news before ATTN (default 2) and CRIT (default 5). */
  staleAttnAfter?: number;
  staleCritAfter?: number;
  /** Percent of disk / memory used for ATTN and CRIT. */
  diskAttnPct?: number;
  diskCritPct?: number;
  memAttnPct?: number;
  memCritPct?: number;
  /** The agent version the fleet should run; unset means no version check. */
  expectedAgentVersion?: string;
  /**
   * The center key rotation a node missed, from the key ids its heartbeat says it trusts (keys/agent-answer.ts):
   * past the overlap it refuses every command signed by the current key. Unset: no check.
   */
  centerKeyMissed?: (trustedKeyIds: readonly string[]) => { old_key_id: string; new_key_id: string; effective_at: string } | undefined;
  /**
   * Whether a maintenance window covers the node at this time (the center passes ops/maintenance.ts over its state),
   * so every reader of the model (monitor, API, console pills) silences the same reasons.
   */
  inMaintenance?: (node: NodeRecord, nowMs: number) => boolean;
}

export const DEFAULT_ATTENTION = {
  staleAttnAfter: 2,
  staleCritAfter: 5,
  diskAttnPct: 85,
  diskCritPct: 95,
  memAttnPct: 90,
  memCritPct: 98,
} as const;

const RANK: Record<AttentionStatus, number> = { ok: 0, attn: 1, crit: 2 };

export function worseStatus(a: AttentionStatus, b: AttentionStatus): AttentionStatus {
  return RANK[a] >= RANK[b] ? a : b;
}

export function statusRank(s: AttentionStatus): number {
  return RANK[s];
}

const secs = (ms: number) => `${Math.round(ms / 1000)} s`;

/** Scan data as another module may attach it to a node; read defensively (it may be absent or partial). */
type FindingLike = { check?: unknown; severity?: unknown; title?: unknown; status?: unknown };
interface ScanLike {
  summary?: { critical?: unknown; high?: unknown };
  /** scan-state.ts keeps the findings above `info` here; a full report has `findings`. */
  open_findings?: FindingLike[];
  findings?: FindingLike[];
}

const INTEGRITY_CHECK = 'file-integrity';
const CLOSED_FINDING = new Set(['resolved', 'accepted', 'suppressed', 'closed']);

function scanReasons(scan: ScanLike, out: AttentionReason[]): void {
  const findings = Array.isArray(scan.open_findings) ? scan.open_findings : Array.isArray(scan.findings) ? scan.findings : undefined;
  let critical = 0;
  let high = 0;
  let drift: { severity: ReasonSeverity; titles: string[] } | undefined;
  if (findings) {
    for (const f of findings) {
      if (typeof f !== 'object' || f === null) continue;
      if (typeof f.status === 'string' && CLOSED_FINDING.has(f.status)) continue;
      if (f.check === INTEGRITY_CHECK && f.severity !== 'info') {
        const sev: ReasonSeverity = f.severity === 'critical' || f.severity === 'high' ? 'crit' : 'attn';
        drift ??= { severity: sev, titles: [] };
        if (sev === 'crit') drift.severity = 'crit';
        if (drift.titles.length < 3 && typeof f.title === 'string') drift.titles.push(f.title);
        continue;
      }
      if (f.severity === 'critical') critical++;
      else if (f.severity === 'high') high++;
    }
  } else if (scan.summary && typeof scan.summary === 'object') {
    critical = Number(scan.summary.critical) || 0;
    high = Number(scan.summary.high) || 0;
  }
  if (critical > 0) out.push({ code: 'SCAN_CRITICAL', severity: 'crit', message: `${critical} open critical scan finding${critical === 1 ? '' : 's'}` });
  if (high > 0) out.push({ code: 'SCAN_HIGH', severity: 'attn', message: `${high} open high scan finding${high === 1 ? '' : 's'}` });
  if (drift) out.push({ code: 'FILE_INTEGRITY_DRIFT', severity: drift.severity, message: `file integrity drift${drift.titles.length ? `: ${drift.titles.join('; ')}` : ''}` });
}

function usageReason(code: string, what: string, used: number, total: number, attnPct: number, critPct: number, out: AttentionReason[]): void {
  if (!(total > 0) || !Number.isFinite(used)) return;
  const pct = (used / total) * 100;
  if (pct >= critPct) out.push({ code, severity: 'crit', message: `${what} ${pct.toFixed(1)}% used (critical at ${critPct}%)` });
  else if (pct >= attnPct) out.push({ code, severity: 'attn', message: `${what} ${pct.toFixed(1)}% used (attention at ${attnPct}%)` });
}

/**
 * Assesses one node. Meaningful for approved nodes (others are reported OK with no reasons: their enrollment is
 * their status). Staleness counts from the last heartbeat, or from approval for a node not heard from yet.
 */
export function assessNode(node: NodeRecord, nowMs: number, policy: AttentionPolicy, opts?: AssessOptions): Assessment {
  if (node.enrollment !== 'approved') return { status: 'ok', reasons: [] };
  const p = withDefaults(policy);
  const reasons: AttentionReason[] = [];
  const interval = policy.heartbeatIntervalMs;

  const since = node.last_seen ?? node.decided_at ?? node.enrolled_at;
  const age = nowMs - Date.parse(since);
  if (Number.isFinite(age)) {
    const what = node.last_seen ? `no heartbeat for ${secs(age)}` : `no heartbeat since approval ${secs(age)} ago`;
    if (age > p.staleCritAfter * interval) reasons.push({ code: 'STALE', severity: 'crit', message: `${what} (expected every ${secs(interval)})` });
    else if (age > p.staleAttnAfter * interval) reasons.push({ code: 'STALE', severity: 'attn', message: `${what} (expected every ${secs(interval)})` });
  }

  const hb = node.last_heartbeat;
  if (hb) {
    if (hb.services_ok === false) {
      const failing = Object.entries(hb.services ?? {})
        .filter(([, state]) => state !== 'active')
        .slice(0, 5)
        .map(([unit, state]) => `${unit} ${state}`);
      reasons.push({ code: 'SERVICES_FAILED', severity: 'attn', message: `services not OK${failing.length ? `: ${failing.join(', ')}` : ''}` });
    }
    if (hb.cloudflare_ok === false) reasons.push({ code: 'CLOUDFLARE_DOWN', severity: 'attn', message: 'Cloudflare tunnel not OK' });
    const missed = hb.center_key_ids && policy.centerKeyMissed?.(hb.center_key_ids);
    if (missed) {
      reasons.push({
        code: 'CENTER_KEY_ROTATION_MISSED',
        severity: 'attn',
        message: `missed the center key rotation ${missed.old_key_id} → ${missed.new_key_id} of ${missed.effective_at}: refuses commands until the new key is pinned`,
      });
    }
    const m = hb.metrics;
    if (m) {
      usageReason('DISK_HIGH', 'disk', m.disk_used_bytes, m.disk_total_bytes, p.diskAttnPct, p.diskCritPct, reasons);
      usageReason('MEMORY_HIGH', 'memory', m.mem_used_bytes, m.mem_total_bytes, p.memAttnPct, p.memCritPct, reasons);
    }
  }

  const scan = (node as { latest_scan?: unknown }).latest_scan;
  if (scan && typeof scan === 'object') scanReasons(scan as ScanLike, reasons);

  if (p.expectedAgentVersion && node.agent_version && node.agent_version !== p.expectedAgentVersion) {
    reasons.push({ code: 'AGENT_VERSION_DRIFT', severity: 'attn', message: `agent ${node.agent_version}, fleet expects ${p.expectedAgentVersion}` });
  }

  const incidents = node.open_incidents ?? [];
  if (incidents.length) {
    const critical = incidents.filter((i) => i.severity === 'critical');
    const worst = critical[0] ?? incidents[incidents.length - 1]!;
    const n = incidents.length;
    reasons.push({
      code: 'OPEN_INCIDENT',
      severity: critical.length ? 'crit' : 'attn',
      message: `${n} open incident${n === 1 ? '' : 's'} (${worst.severity}: ${worst.title})`,
    });
  }

  if (opts?.inMaintenance ?? policy.inMaintenance?.(node, nowMs)) return silence(reasons);
  let status: AttentionStatus = 'ok';
  for (const r of reasons) status = worseStatus(status, r.severity);
  return { status, reasons };
}

function silence(all: AttentionReason[]): Assessment {
  const reasons: AttentionReason[] = [];
  const silenced: AttentionReason[] = [];
  let status: AttentionStatus = 'ok';
  for (const r of all) {
    if (MAINTENANCE_SILENCED.has(r.code)) silenced.push(r);
    else {
      reasons.push(r);
      status = worseStatus(status, r.severity);
    }
  }
  return { status, reasons, silenced };
}

/**
 * The policy with its defaults filled in, once per policy object: the console assesses every node of a large fleet
 * in one pass, and merging the defaults per node was most of that pass's cost. Policies are not mutated after use.
 */
const merged = new WeakMap<AttentionPolicy, AttentionPolicy & typeof DEFAULT_ATTENTION>();
function withDefaults(policy: AttentionPolicy): AttentionPolicy & typeof DEFAULT_ATTENTION {
  let p = merged.get(policy);
  if (!p) merged.set(policy, (p = { ...DEFAULT_ATTENTION, ...stripUndefined(policy) } as AttentionPolicy & typeof DEFAULT_ATTENTION));
  return p;
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/** The last journaled attention status of a node. */
export interface AttentionRecord {
  status: AttentionStatus;
  since: string;
  seq: number;
  reasons: AttentionReason[];
}

/** Reducer for `attention` envelopes (replayed like any other fact; never re-evaluates). */
export function applyAttentionEvent(state: FleetState, env: EnvelopeOf<'attention'>): void {
  if (!env.node_id) return;
  const b = env.body;
  // Cheap guard kept from before the typed registry: a status outside the three would break the pills.
  if (b.status !== 'ok' && b.status !== 'attn' && b.status !== 'crit') return;
  state.attention.set(env.node_id, { status: b.status, since: env.ts, seq: env.seq, reasons: Array.isArray(b.reasons) ? b.reasons : [] });
}

/** The status last journaled for a node ('ok' when none was). */
export function journaledStatus(state: FleetState, nodeId: string): AttentionStatus {
  return state.attention.get(nodeId)?.status ?? 'ok';
}

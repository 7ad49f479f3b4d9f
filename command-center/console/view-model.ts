/**
 * What each console partial shows, as pure functions of fleet state, recent envelopes and the time. Templates only
 * lay these objects out; every decision (status pill, which reasons, how heartbeats fold, the sparkline path) is
 * made here, so it is table-tested without a browser.
 */
import type { Envelope } from '../../protocol/envelope.js';
import type { FleetState, NodeRecord } from '../fleet-state.js';
import { assessNode } from '../attention.js';
import { nodeStatus, type NodeStatus, type StatusPolicy } from '../node-status.js';

// ---------------------------------------------------------------- formatting

/** `3d 4h`, `2h 5m`, `4m 10s`, `12s`: two most significant units, never negative. */
export function formatDuration(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  const d = Math.floor(s / 86_400);
  const h = Math.floor((s % 86_400) / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = s % 60;
  if (d) return `${d}d ${h}h`;
  if (h) return `${h}h ${m}m`;
  if (m) return `${m}m ${sec}s`;
  return `${sec}s`;
}

export function formatBytes(n: number): string {
  if (!Number.isFinite(n) || n < 0) return '—';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${i === 0 ? v : v.toFixed(v < 10 ? 1 : 0)} ${units[i]}`;
}

/** `HH:MM:SS` (UTC) of an RFC 3339 UTC timestamp, or `—`. */
export function formatClock(iso: string | undefined): string {
  return iso && iso.length >= 19 ? iso.slice(11, 19) : '—';
}

export function percent(used: number, total: number): number | undefined {
  return total > 0 ? Math.min(100, Math.max(0, (used / total) * 100)) : undefined;
}

export function shortHash(hex: string | undefined, n = 12): string {
  return hex ? hex.slice(0, n) : '—';
}

// ---------------------------------------------------------------- status pills

export interface Pill {
  status: NodeStatus;
  /** Text on the pill: status is never conveyed by colour alone. */
  label: string;
  /** A shape that differs per status, for colour-blind readers scanning the list. */
  icon: string;
}

const PILLS: Record<NodeStatus, Omit<Pill, 'status'>> = {
  ok: { label: 'OK', icon: '●' },
  attn: { label: 'ATTN', icon: '▲' },
  crit: { label: 'CRIT', icon: '✖' },
  pending: { label: 'PENDING', icon: '◌' },
  offline: { label: 'OFFLINE', icon: '○' },
  rejected: { label: 'REJECTED', icon: '⊘' },
  revoked: { label: 'REVOKED', icon: '⊘' },
};

export function pill(status: NodeStatus): Pill {
  return { status, ...PILLS[status] };
}

// ---------------------------------------------------------------- filters and URLs

export const STATUS_FILTERS = ['ok', 'attn', 'crit', 'pending', 'offline'] as const;

export interface ListFilter {
  q: string;
  profile: string;
  status: string;
}

export const NO_FILTER: ListFilter = { q: '', profile: '', status: '' };

/** Reads the list filter from query parameters, dropping anything unexpected. */
export function parseFilter(query: Record<string, string | undefined>): ListFilter {
  const q = (query.q ?? '').trim().slice(0, 64);
  const profile = /^[a-z0-9][a-z0-9._-]{0,31}$/.test(query.profile ?? '') ? query.profile! : '';
  const status = (STATUS_FILTERS as readonly string[]).includes(query.status ?? '') ? query.status! : '';
  return { q, profile, status };
}

export function matchesFilter(node: NodeRecord, status: NodeStatus, f: ListFilter): boolean {
  if (f.status && status !== f.status) return false;
  if (f.profile && node.os_profile !== f.profile) return false;
  if (f.q) {
    const q = f.q.toLowerCase();
    if (!node.hostname.toLowerCase().includes(q) && !node.node_id.toLowerCase().includes(q)) return false;
  }
  return true;
}

/** `/console?…` keeping the filter and selection; empty parameters are left out so URLs stay short. */
export function consoleHref(f: ListFilter, node?: string): string {
  const p = new URLSearchParams();
  if (node) p.set('node', node);
  if (f.q) p.set('q', f.q);
  if (f.profile) p.set('profile', f.profile);
  if (f.status) p.set('status', f.status);
  const s = p.toString();
  return s ? `/console?${s}` : '/console';
}

// ---------------------------------------------------------------- mission bar

export type StatusMap = Map<string, NodeStatus>;

export function computeStatuses(state: FleetState, nowMs: number, policy: StatusPolicy): StatusMap {
  const out: StatusMap = new Map();
  for (const n of state.nodes.values()) out.set(n.node_id, nodeStatus(n, nowMs, policy));
  return out;
}

export interface MissionBar {
  total: number;
  healthy: number;
  attention: number;
  critical: number;
  pending: number;
  offline: number;
  uptime: string;
  seq: number;
  ledgerRoot: string;
  ledgerSize: string;
  ledgerTitle: string;
}

export interface LedgerRootView {
  tree_size: number;
  root_hash: string;
}

export function missionBar(statuses: StatusMap, ctx: { seq: number; nowMs: number; startedAtMs: number; ledger?: LedgerRootView | undefined }): MissionBar {
  const c: Record<NodeStatus, number> = { ok: 0, attn: 0, crit: 0, pending: 0, offline: 0, rejected: 0, revoked: 0 };
  for (const s of statuses.values()) c[s]++;
  return {
    // Rejected and revoked nodes are history, not fleet.
    total: statuses.size - c.rejected - c.revoked,
    healthy: c.ok,
    attention: c.attn,
    critical: c.crit,
    pending: c.pending,
    offline: c.offline,
    // Minute resolution: the bar is re-sent only when its text changes, so a seconds counter would churn.
    uptime: formatDuration(Math.floor((ctx.nowMs - ctx.startedAtMs) / 60_000) * 60_000),
    seq: ctx.seq,
    ledgerRoot: ctx.ledger ? shortHash(ctx.ledger.root_hash) : '—',
    ledgerSize: ctx.ledger ? String(ctx.ledger.tree_size) : '—',
    ledgerTitle: ctx.ledger ? ctx.ledger.root_hash : 'no ledger on this center',
  };
}

// ---------------------------------------------------------------- node list

export interface NodeRow {
  id: string;
  domId: string;
  hostname: string;
  profile: string;
  pill: Pill;
  load: string;
  mem: string;
  lastSeen: string;
  lastSeenIso: string;
  href: string;
  selected: boolean;
  /** Set when this rendering is caused by a fresh heartbeat, to play the glow once. */
  glow: boolean;
}

export function nodeDomId(id: string): string {
  return `node-${id}`;
}

export function nodeRow(node: NodeRecord, status: NodeStatus, opts: { filter: ListFilter; selected?: string | undefined; glow?: boolean }): NodeRow {
  const m = node.last_heartbeat?.metrics;
  const mem = m ? percent(m.mem_used_bytes, m.mem_total_bytes) : undefined;
  return {
    id: node.node_id,
    domId: nodeDomId(node.node_id),
    hostname: node.hostname,
    profile: node.os_profile,
    pill: pill(status),
    load: m ? m.load[0].toFixed(2) : '—',
    mem: mem === undefined ? '—' : `${Math.round(mem)}%`,
    lastSeen: formatClock(node.last_seen),
    lastSeenIso: node.last_seen ?? '',
    href: consoleHref(opts.filter, node.node_id),
    selected: opts.selected === node.node_id,
    glow: opts.glow ?? false,
  };
}

/** Rows for the list: filtered, worst status first, then hostname. */
export function nodeRows(state: FleetState, statuses: StatusMap, filter: ListFilter, selected?: string): NodeRow[] {
  const rows: NodeRow[] = [];
  for (const n of state.nodes.values()) {
    const s = statuses.get(n.node_id)!;
    if (matchesFilter(n, s, filter)) rows.push(nodeRow(n, s, { filter, selected }));
  }
  return rows.sort(compareRows);
}

const STATUS_ORDER: Record<NodeStatus, number> = { crit: 0, attn: 1, offline: 2, pending: 3, ok: 4, rejected: 5, revoked: 6 };

export function compareRows(a: NodeRow, b: NodeRow): number {
  return STATUS_ORDER[a.pill.status] - STATUS_ORDER[b.pill.status] || (a.hostname < b.hostname ? -1 : a.hostname > b.hostname ? 1 : a.id < b.id ? -1 : 1);
}

export function profilesOf(state: FleetState): string[] {
  const s = new Set<string>();
  for (const n of state.nodes.values()) s.add(n.os_profile);
  return [...s].sort();
}

// ---------------------------------------------------------------- pending enrollments

export interface PendingItem {
  id: string;
  hostname: string;
  profile: string;
  keyId: string;
  requestedAt: string;
}

export function pendingEnrollments(state: FleetState, limit = 50): { items: PendingItem[]; more: number } {
  const all = [...state.nodes.values()].filter((n) => n.enrollment === 'pending').sort((a, b) => (a.enrolled_at < b.enrolled_at ? -1 : 1));
  return {
    items: all.slice(0, limit).map((n) => ({ id: n.node_id, hostname: n.hostname, profile: n.os_profile, keyId: n.key_id, requestedAt: n.enrolled_at })),
    more: Math.max(0, all.length - limit),
  };
}

// ---------------------------------------------------------------- attention

/** Why a node needs attention: the attention model's reasons (attention.ts), or how long an offline node is silent. */
export function attentionReasons(node: NodeRecord, status: NodeStatus, nowMs: number, policy: StatusPolicy): string[] {
  if (status === 'offline') return [node.last_seen ? `no heartbeat for ${formatDuration(nowMs - Date.parse(node.last_seen))}` : 'never sent a heartbeat'];
  if (node.enrollment !== 'approved') return [];
  return assessNode(node, nowMs, policy).reasons.map((r) => r.message);
}

export interface AttentionItem {
  id: string;
  hostname: string;
  pill: Pill;
  reasons: string[];
  href: string;
}

export function attentionSummary(
  state: FleetState,
  statuses: StatusMap,
  ctx: { nowMs: number; policy: StatusPolicy; filter: ListFilter; limit?: number },
): { crit: number; attn: number; offline: number; items: AttentionItem[]; more: number } {
  const picked: Array<{ node: NodeRecord; status: NodeStatus }> = [];
  let crit = 0;
  let attn = 0;
  let offline = 0;
  for (const node of state.nodes.values()) {
    const status = statuses.get(node.node_id)!;
    if (status === 'crit') crit++;
    else if (status === 'attn') attn++;
    else if (status === 'offline') offline++;
    else continue;
    picked.push({ node, status });
  }
  picked.sort((a, b) => STATUS_ORDER[a.status] - STATUS_ORDER[b.status] || (a.node.hostname < b.node.hostname ? -1 : 1));
  const limit = ctx.limit ?? 12;
  return {
    crit,
    attn,
    offline,
    items: picked.slice(0, limit).map(({ node, status }) => ({
      id: node.node_id,
      hostname: node.hostname,
      pill: pill(status),
      reasons: attentionReasons(node, status, ctx.nowMs, ctx.policy),
      href: consoleHref(ctx.filter, node.node_id),
    })),
    more: Math.max(0, picked.length - limit),
  };
}

// ---------------------------------------------------------------- envelopes: feed and timeline

type Body = Record<string, unknown>;
const str = (v: unknown): string => (typeof v === 'string' ? v : v === undefined || v === null ? '' : JSON.stringify(v));

const PAST: Record<string, string> = { approve: 'approved', reject: 'rejected', revoke: 'revoked', create: 'created' };

/** A one-line description of any envelope kind, for the feed and timelines. */
export function describeEnvelope(env: Envelope): string {
  const b = env.body as Body;
  switch (env.kind) {
    case 'heartbeat':
      return `heartbeat from ${str(b.hostname) || env.node_id}`;
    case 'enrollment':
      return b.action === 'request'
        ? `enrollment requested by ${str(b.hostname)} (${str(b.os_profile)})${b.auto_approved ? ', auto-approved' : ''}`
        : `enrollment ${PAST[str(b.action)] ?? str(b.action)} by ${env.author}`;
    case 'join_token':
      return b.action === 'create' ? `join token ${str(b.token_id)} created (${str(b.uses)} uses)` : `join token ${str(b.token_id)} ${PAST[str(b.action)] ?? str(b.action)}`;
    case 'scan': {
      const s = (b.summary ?? {}) as Record<string, number>;
      const n = Array.isArray(b.findings) ? b.findings.length : 0;
      return `scan: ${n} finding${n === 1 ? '' : 's'}${s.critical ? `, ${s.critical} critical` : ''}${s.high ? `, ${s.high} high` : ''}`;
    }
    case 'command':
      return `command ${str(b.action ?? (b.payload as Body | undefined)?.action)} issued by ${env.author}`;
    case 'receipt':
      return `receipt: ${str(b.action)} ${str(b.status ?? (b.ok === true ? 'ok' : b.ok === false ? 'failed' : ''))}`.replace(/\s+/g, ' ').trim();
    case 'note':
      return `note: ${str(b.text ?? b.message ?? b.title)}`;
    case 'incident':
      return `incident${b.severity ? ` (${str(b.severity)})` : ''}: ${str(b.title ?? b.text ?? b.message)}`;
    default:
      return `${env.kind}${b.text || b.message || b.title ? `: ${str(b.text ?? b.message ?? b.title)}` : ''}`;
  }
}

export interface FeedItem {
  seq: number;
  domId: string;
  ts: string;
  clock: string;
  kind: string;
  nodeId: string;
  text: string;
  author: string;
  href: string;
}

export function feedDomId(seq: number): string {
  return `ev-${seq}`;
}

export function feedItem(env: Envelope, filter: ListFilter = NO_FILTER): FeedItem {
  return {
    seq: env.seq,
    domId: feedDomId(env.seq),
    ts: env.ts,
    clock: formatClock(env.ts),
    kind: env.kind,
    nodeId: env.node_id ?? '',
    text: describeEnvelope(env).slice(0, 300),
    author: env.author,
    href: env.node_id ? consoleHref(filter, env.node_id) : '',
  };
}

/** Whether an envelope belongs in the global feed (heartbeats would drown everything else). */
export function isFeedKind(kind: string): boolean {
  return kind !== 'heartbeat';
}

/** Newest first, at most `limit`. */
export function feedItems(recent: readonly Envelope[], filter: ListFilter = NO_FILTER, limit = 50): FeedItem[] {
  const out: FeedItem[] = [];
  for (let i = recent.length - 1; i >= 0 && out.length < limit; i--) {
    const env = recent[i]!;
    if (isFeedKind(env.kind)) out.push(feedItem(env, filter));
  }
  return out;
}

export type TimelineItem =
  | { type: 'heartbeats'; count: number; from: string; to: string; fromClock: string; toClock: string }
  | { type: 'event'; seq: number; kind: string; clock: string; ts: string; text: string; author: string };

/** A node's timeline, newest first, with runs of consecutive heartbeats folded into one line. */
export function timeline(envelopes: readonly Envelope[], limit = 40): TimelineItem[] {
  const out: TimelineItem[] = [];
  for (let i = envelopes.length - 1; i >= 0 && out.length < limit; i--) {
    const env = envelopes[i]!;
    const last = out[out.length - 1];
    if (env.kind === 'heartbeat') {
      if (last?.type === 'heartbeats') {
        last.count++;
        last.from = env.ts;
        last.fromClock = formatClock(env.ts);
      } else out.push({ type: 'heartbeats', count: 1, from: env.ts, to: env.ts, fromClock: formatClock(env.ts), toClock: formatClock(env.ts) });
    } else {
      out.push({ type: 'event', seq: env.seq, kind: env.kind, clock: formatClock(env.ts), ts: env.ts, text: describeEnvelope(env), author: env.author });
    }
  }
  return out;
}

// ---------------------------------------------------------------- sparklines

export interface Sparkline {
  /** SVG path data in a `width`×`height` box, or '' with fewer than two points. */
  d: string;
  width: number;
  height: number;
  last: string;
  min: string;
  max: string;
  points: number;
  label: string;
}

/**
 * Path of a series scaled into the box. The y range is [min(0, lo), max(hi, floor)] so a flat idle series stays
 * near the bottom instead of being stretched into noise.
 */
export function sparkline(values: readonly number[], opts: { width?: number; height?: number; floor?: number; format?: (v: number) => string; label?: string } = {}): Sparkline {
  const width = opts.width ?? 120;
  const height = opts.height ?? 28;
  const fmt = opts.format ?? ((v: number) => v.toFixed(2));
  const vals = values.filter((v) => Number.isFinite(v));
  const label = opts.label ?? '';
  if (vals.length === 0) return { d: '', width, height, last: '—', min: '—', max: '—', points: 0, label };
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of vals) {
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  const yMin = Math.min(0, lo);
  const yMax = Math.max(hi, opts.floor ?? 0, yMin + 1e-9);
  const pad = 1.5; // keep the stroke inside the box
  const sx = vals.length > 1 ? (width - 2 * pad) / (vals.length - 1) : 0;
  const sy = (height - 2 * pad) / (yMax - yMin);
  let d = '';
  if (vals.length > 1) {
    vals.forEach((v, i) => {
      const x = pad + i * sx;
      const y = height - pad - (v - yMin) * sy;
      d += `${i === 0 ? 'M' : 'L'}${x.toFixed(1)},${y.toFixed(1)}`;
    });
  }
  return { d, width, height, last: fmt(vals[vals.length - 1]!), min: fmt(lo), max: fmt(hi), points: vals.length, label };
}

// ---------------------------------------------------------------- findings

export const SEVERITY_ORDER = ['critical', 'high', 'medium', 'low', 'info'] as const;

export interface FindingView {
  nodeId: string;
  hostname: string;
  severity: string;
  check: string;
  title: string;
  href: string;
}

export interface ScanLike {
  node_id: string;
  findings: Array<{ severity: string; check: string; title: string }>;
  finished_at?: string;
}

/** The latest scan per node among the given envelopes (later envelopes win). */
export function latestScans(envelopes: readonly Envelope[]): Map<string, ScanLike> {
  const out = new Map<string, ScanLike>();
  for (const env of envelopes) {
    if (env.kind !== 'scan' || !env.node_id) continue;
    const b = env.body as Body;
    if (!Array.isArray(b.findings)) continue;
    out.set(env.node_id, { node_id: env.node_id, findings: b.findings as ScanLike['findings'], ...(typeof b.finished_at === 'string' ? { finished_at: b.finished_at } : {}) });
  }
  return out;
}

/** The latest scan per node as the fleet state keeps it (open findings, above `info`). */
export function latestScansFromState(state: FleetState): Map<string, ScanLike> {
  const out = new Map<string, ScanLike>();
  for (const n of state.nodes.values()) {
    const s = n.latest_scan;
    if (s) out.set(n.node_id, { node_id: n.node_id, findings: s.open_findings, finished_at: s.finished_at });
  }
  return out;
}

export function findingsBySeverity(
  scans: Map<string, ScanLike>,
  state: FleetState,
  filter: ListFilter = NO_FILTER,
  perSeverity = 5,
): Array<{ severity: string; count: number; items: FindingView[] }> {
  const groups = new Map<string, FindingView[]>(SEVERITY_ORDER.map((s) => [s, []]));
  for (const scan of scans.values()) {
    const hostname = state.nodes.get(scan.node_id)?.hostname ?? scan.node_id;
    for (const f of scan.findings) {
      groups.get(f.severity)?.push({ nodeId: scan.node_id, hostname, severity: f.severity, check: f.check, title: f.title, href: consoleHref(filter, scan.node_id) });
    }
  }
  return SEVERITY_ORDER.map((severity) => {
    const all = groups.get(severity)!;
    return { severity, count: all.length, items: all.slice(0, perSeverity) };
  });
}

// ---------------------------------------------------------------- node detail

export interface NodeDetailView {
  id: string;
  hostname: string;
  profile: string;
  pill: Pill;
  enrollment: string;
  agentVersion: string;
  keyId: string;
  lastSeen: string;
  firstSeen: string;
  heartbeats: number;
  uptime: string;
  tunnel: string;
  facts: Array<[string, string]>;
  services: Array<{ unit: string; state: string; ok: boolean }>;
  spark: { load: Sparkline; mem: Sparkline; disk: Sparkline };
  mem: string;
  disk: string;
  findings: Array<{ severity: string; check: string; title: string }>;
  scannedAt: string;
  timeline: TimelineItem[];
  reasons: string[];
}

export function nodeDetail(
  node: NodeRecord,
  status: NodeStatus,
  ctx: { nowMs: number; policy: StatusPolicy; envelopes: readonly Envelope[]; scan?: ScanLike | undefined },
): NodeDetailView {
  const hb = node.last_heartbeat;
  const samples = node.history.samples();
  const pct = (u: number, t: number) => percent(u, t) ?? Number.NaN;
  const fmtPct = (v: number) => `${Math.round(v)}%`;
  const m = hb?.metrics;
  const findings = [...(ctx.scan?.findings ?? [])].sort((a, b) => SEVERITY_ORDER.indexOf(a.severity as never) - SEVERITY_ORDER.indexOf(b.severity as never));
  return {
    id: node.node_id,
    hostname: node.hostname,
    profile: node.os_profile,
    pill: pill(status),
    enrollment: node.enrollment,
    agentVersion: node.agent_version,
    keyId: node.key_id,
    lastSeen: node.last_seen ?? '—',
    firstSeen: node.first_seen ?? '—',
    heartbeats: node.heartbeat_count,
    uptime: m ? formatDuration(m.uptime_s * 1000) : '—',
    tunnel: hb ? (hb.cloudflare_ok ? 'up' : 'DOWN') : '—',
    facts: Object.entries(node.facts).map(([k, v]) => [k, v === null ? 'null' : String(v)] as [string, string]).sort((a, b) => (a[0] < b[0] ? -1 : 1)),
    services: Object.entries(hb?.services ?? {}).map(([unit, st]) => ({ unit, state: st, ok: st === 'active' })).sort((a, b) => Number(a.ok) - Number(b.ok) || (a.unit < b.unit ? -1 : 1)),
    spark: {
      load: sparkline(samples.map((s) => s.load1), { floor: 1, label: 'load (1 min)' }),
      mem: sparkline(samples.map((s) => pct(s.mem_used, s.mem_total)), { floor: 100, format: fmtPct, label: 'memory used' }),
      disk: sparkline(samples.map((s) => pct(s.disk_used, s.disk_total)), { floor: 100, format: fmtPct, label: 'disk used' }),
    },
    mem: m ? `${formatBytes(m.mem_used_bytes)} / ${formatBytes(m.mem_total_bytes)}` : '—',
    disk: m ? `${formatBytes(m.disk_used_bytes)} / ${formatBytes(m.disk_total_bytes)}` : '—',
    findings: findings.slice(0, 20),
    scannedAt: ctx.scan?.finished_at ?? '',
    timeline: timeline(ctx.envelopes),
    reasons: attentionReasons(node, status, ctx.nowMs, ctx.policy),
  };
}

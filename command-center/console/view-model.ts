/**
 * What each console partial shows, as pure functions of fleet state, recent envelopes and the time. Templates only
 * lay these objects out; every decision (status pill, which reasons, how heartbeats fold, the sparkline path) is
 * made here, so it is table-tested without a browser.
 */
import { keyRotations } from '../fleet/node-keys.js';
import { z } from 'zod';
import type { Envelope } from '../../protocol/envelope.js';
import { readEnvelope, type BodyOf } from '../../protocol/envelope-kinds.js';
import { describe, type DescribeContext } from '../../protocol/describe.js';
import { ACTIONABLE_SEVERITIES, SEVERITIES } from '../../protocol/scan.js';
import { ACTION_NAMES, MAX_JOURNAL_LINES, UNIT_ACTIONS } from '../../protocol/actions.js';
import { tagSchema } from '../../protocol/event-kinds.js';
import type { FleetState, NodeRecord } from '../fleet/fleet-state.js';
import { assessNode } from '../ops/attention.js';
import { policyProfileFor, unitMatches, type CommandPolicy } from '../commands/command-policy.js';
import { nodeStatus, type NodeStatus, type StatusPolicy } from '../fleet/node-status.js';
import type { NodeScheduleView } from '../ops/orchestrator.js';
import type { NodeOutage } from '../fleet/outages.js';

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

/** `2025-01-01 12:00:01 UTC` of an RFC 3339 UTC timestamp (fractions dropped), or the input when it is not one. */
export function formatStamp(iso: string | undefined): string {
  if (!iso) return '—';
  const m = /^(\d{4}-\d{2}-\d{2})T(\d{2}:\d{2}:\d{2})(?:\.\d+)?Z$/.exec(iso);
  return m ? `${m[1]} ${m[2]} UTC` : iso;
}

export function percent(used: number, total: number): number | undefined {
  return total > 0 ? Math.min(100, Math.max(0, (used / total) * 100)) : undefined;
}

/**
 * The part of a node id that tells nodes apart when several share a hostname: ids are chosen by agents and are often
 * `host-<random>` or a UUID, so the last 8 characters carry the distinguishing part.
 */
export function shortId(id: string): string {
  return id.length <= 12 ? id : `…${id.slice(-8)}`;
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

/**
 * The pill of a node as the console shows it: an approved node that has never sent a heartbeat is OFFLINE to the
 * API (the status contract), but the console says it is waiting for its first one, which is what an operator who
 * just approved it needs to read.
 */
export function nodePill(node: Pick<NodeRecord, 'enrollment' | 'last_seen'>, status: NodeStatus): Pill {
  if (status === 'offline' && node.enrollment === 'approved' && !node.last_seen) return { status, label: 'WAITING', icon: '◔' };
  return pill(status);
}

// ---------------------------------------------------------------- filters and URLs

export const STATUS_FILTERS = ['ok', 'attn', 'crit', 'pending', 'offline'] as const;

export interface ListFilter {
  q: string;
  profile: string;
  status: string;
  /** A tag the node carries (exact match); '' or absent for any. */
  tag?: string;
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
  if (f.tag && !node.tags.includes(f.tag)) return false;
  if (f.q) {
    const q = f.q.toLowerCase();
    if (!node.hostname.toLowerCase().includes(q) && !node.node_id.toLowerCase().includes(q)) return false;
  }
  return true;
}

export const SORT_KEYS = ['status', 'name', 'last_seen'] as const;
export type SortKey = (typeof SORT_KEYS)[number];
export const PAGE_SIZES = [25, 50, 100, 200] as const;
export const DEFAULT_PAGE_SIZE = 50;

/** What one client's node list shows: the filter, the order, and which page of it. */
export interface ListView extends ListFilter {
  sort: SortKey;
  /** 1-based. */
  page: number;
  size: number;
}

export const DEFAULT_VIEW: ListView = { ...NO_FILTER, sort: 'status', page: 1, size: DEFAULT_PAGE_SIZE };

const emptyAsUndefined = (v: unknown) => (v === '' ? undefined : v);

/**
 * The console's list query parameters. Unlike `parseFilter` (lenient, for links), a value that is present but not
 * valid is refused, so a mistyped shared link says what is wrong instead of silently showing another view.
 */
export const listViewQuerySchema = z.object({
  q: z.preprocess((v) => (typeof v === 'string' ? v.trim() : v), z.string().max(64, 'q: at most 64 characters').optional()),
  profile: z.preprocess(emptyAsUndefined, z.string().regex(/^[a-z0-9][a-z0-9._-]{0,31}$/, 'profile: a profile name such as debian').optional()),
  status: z.preprocess(emptyAsUndefined, z.enum(STATUS_FILTERS, { message: `status: one of ${STATUS_FILTERS.join(', ')}` }).optional()),
  tag: z.preprocess(emptyAsUndefined, tagSchema.optional()),
  sort: z.preprocess(emptyAsUndefined, z.enum(SORT_KEYS, { message: `sort: one of ${SORT_KEYS.join(', ')}` }).optional()),
  page: z.preprocess(
    emptyAsUndefined,
    z.coerce.number({ message: 'page: a whole number from 1' }).int('page: a whole number from 1').min(1, 'page: a whole number from 1').max(1_000_000, 'page: at most 1000000').optional(),
  ),
  size: z.preprocess(
    emptyAsUndefined,
    z.coerce
      .number({ message: `size: one of ${PAGE_SIZES.join(', ')}` })
      .refine((n) => (PAGE_SIZES as readonly number[]).includes(n), `size: one of ${PAGE_SIZES.join(', ')}`)
      .optional(),
  ),
});

export type ViewParse = { ok: true; view: ListView } | { ok: false; issues: Array<{ path: string; message: string }> };

/** Reads a list view from query parameters (other parameters, such as `node`, are ignored here). */
export function parseListView(query: Record<string, string | undefined>): ViewParse {
  const r = listViewQuerySchema.safeParse({ q: query.q, profile: query.profile, status: query.status, tag: query.tag, sort: query.sort, page: query.page, size: query.size });
  if (!r.success) return { ok: false, issues: r.error.issues.map((i) => ({ path: i.path.join('.'), message: i.path[0] === 'tag' ? `tag: ${i.message}` : i.message })) };
  const d = r.data;
  const view: ListView = { q: d.q ?? '', profile: d.profile ?? '', status: d.status ?? '', sort: d.sort ?? 'status', page: d.page ?? 1, size: d.size ?? DEFAULT_PAGE_SIZE };
  if (d.tag) view.tag = d.tag;
  return { ok: true, view };
}

/**
 * `/console?…` keeping the filter, the list's order and page, and the selection; parameters at their defaults are
 * left out so URLs stay short.
 */
export function consoleHref(f: ListFilter & Partial<Pick<ListView, 'sort' | 'page' | 'size'>>, node?: string, path = '/console'): string {
  const s = viewQuery(f, node);
  return s ? `${path}?${s}` : path;
}

/** The query string of a view (without `?`), as `consoleHref` writes it. */
export function viewQuery(f: ListFilter & Partial<Pick<ListView, 'sort' | 'page' | 'size'>>, node?: string): string {
  const p = new URLSearchParams();
  if (node) p.set('node', node);
  if (f.q) p.set('q', f.q);
  if (f.profile) p.set('profile', f.profile);
  if (f.status) p.set('status', f.status);
  if (f.tag) p.set('tag', f.tag);
  if (f.sort && f.sort !== 'status') p.set('sort', f.sort);
  if (f.size && f.size !== DEFAULT_PAGE_SIZE) p.set('size', String(f.size));
  if (f.page && f.page > 1) p.set('page', String(f.page));
  return p.toString();
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
  /** How many nodes witnessed the latest scan checkpoint ('' without witnesses), and a fork warning. */
  ledgerWitness: string;
  ledgerFork: string;
}

export interface LedgerRootView {
  tree_size: number;
  root_hash: string;
  /** Nodes that cosigned the latest scan checkpoint, and nodes reporting a fork (docs/LEDGER.md). */
  witnessed?: number;
  forks?: number;
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
    ledgerTitle: ctx.ledger ? `scan ledger root ${ctx.ledger.root_hash} over ${ctx.ledger.tree_size} scan${ctx.ledger.tree_size === 1 ? '' : 's'}` : 'no ledger on this center',
    ledgerWitness: ctx.ledger?.witnessed !== undefined ? `witnessed by ${ctx.ledger.witnessed}` : '',
    ledgerFork: ctx.ledger?.forks ? `FORK seen by ${ctx.ledger.forks} node${ctx.ledger.forks === 1 ? '' : 's'}` : '',
  };
}

// ---------------------------------------------------------------- node list

export interface NodeRow {
  id: string;
  domId: string;
  hostname: string;
  /** The id's distinguishing tail, shown beside the hostname (several nodes may share one). */
  shortId: string;
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
  /** A maintenance window covers the node: the MAINT badge's tooltip (console/maintenance-view.ts). */
  maint?: string | undefined;
}

export function nodeDomId(id: string): string {
  return `node-${id}`;
}

export function nodeRow(node: NodeRecord, status: NodeStatus, opts: { filter: ListFilter; selected?: string | undefined; glow?: boolean; maint?: string | undefined }): NodeRow {
  const m = node.last_heartbeat?.metrics;
  const mem = m ? percent(m.mem_used_bytes, m.mem_total_bytes) : undefined;
  return {
    id: node.node_id,
    domId: nodeDomId(node.node_id),
    hostname: node.hostname,
    shortId: shortId(node.node_id),
    profile: node.os_profile,
    pill: nodePill(node, status),
    load: m ? m.load[0].toFixed(2) : '—',
    mem: mem === undefined ? '—' : `${Math.round(mem)}%`,
    lastSeen: formatClock(node.last_seen),
    lastSeenIso: node.last_seen ?? '',
    href: consoleHref(opts.filter, node.node_id),
    selected: opts.selected === node.node_id,
    glow: opts.glow ?? false,
    ...(opts.maint ? { maint: opts.maint } : {}),
  };
}

/** Rows for the list: filtered, worst status first, then hostname (the whole list; the console pages with `nodePage`). */
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

const byName = (a: NodeRecord, b: NodeRecord): number =>
  a.hostname < b.hostname ? -1 : a.hostname > b.hostname ? 1 : a.node_id < b.node_id ? -1 : a.node_id > b.node_id ? 1 : 0;

/** The list's order for a sort key: status (worst first), name (hostname, then id), last seen (newest first, never-seen last). */
export function nodeComparator(sort: SortKey, statuses: StatusMap): (a: NodeRecord, b: NodeRecord) => number {
  if (sort === 'name') return byName;
  if (sort === 'last_seen') return (a, b) => (a.last_seen ?? '') < (b.last_seen ?? '') ? 1 : (a.last_seen ?? '') > (b.last_seen ?? '') ? -1 : byName(a, b);
  return (a, b) => STATUS_ORDER[statuses.get(a.node_id)!] - STATUS_ORDER[statuses.get(b.node_id)!] || byName(a, b);
}

/** Every node in a sort key's order (shared by all clients with that order; filtering and paging come after). */
export function sortNodes(state: FleetState, statuses: StatusMap, sort: SortKey): NodeRecord[] {
  return [...state.nodes.values()].sort(nodeComparator(sort, statuses));
}

export interface PageLink {
  label: string;
  href: string;
  /** For the stream URL and the htmx controls: the same view as query parameters. */
  query: string;
}

export interface NodePage {
  rows: NodeRow[];
  /** Nodes matching the filter, on all pages. */
  total: number;
  page: number;
  pages: number;
  size: number;
  /** 1-based positions of the first and last row shown ('0–0' when empty). */
  from: number;
  to: number;
  prev: PageLink | undefined;
  next: PageLink | undefined;
  first: PageLink | undefined;
  last: PageLink | undefined;
  sorts: Array<{ key: SortKey; label: string; href: string; current: boolean }>;
  sizes: readonly number[];
  view: ListView;
  /** Whether the fleet has any node at all (to tell "no nodes yet" from "none match"). */
  fleetEmpty: boolean;
}

const SORT_LABELS: Record<SortKey, string> = { status: 'status', name: 'name', last_seen: 'last seen' };

/**
 * One page of the list: the nodes of `sorted` that match the view's filter, from the view's page (clamped to the
 * last page, so a page that emptied as nodes left shows the last one that exists). Rows are built for that page only.
 */
export function nodePage(sorted: readonly NodeRecord[], statuses: StatusMap, view: ListView, selected?: string, maintOf?: (node: NodeRecord) => string | undefined): NodePage {
  const filtering = !!(view.q || view.profile || view.status || view.tag);
  const matching = filtering ? sorted.filter((n) => matchesFilter(n, statuses.get(n.node_id)!, view)) : sorted;
  const total = matching.length;
  const pages = Math.max(1, Math.ceil(total / view.size));
  const page = Math.min(view.page, pages);
  const start = (page - 1) * view.size;
  const shown = { ...view, page };
  const rows = matching.slice(start, start + view.size).map((n) => nodeRow(n, statuses.get(n.node_id)!, { filter: shown, selected, maint: maintOf?.(n) }));
  const link = (p: number, label: string): PageLink => {
    const v = { ...view, page: p };
    return { label, href: consoleHref(v, selected), query: viewQuery(v, selected) };
  };
  return {
    rows,
    total,
    page,
    pages,
    size: view.size,
    from: total ? start + 1 : 0,
    to: start + rows.length,
    prev: page > 1 ? link(page - 1, 'Previous') : undefined,
    next: page < pages ? link(page + 1, 'Next') : undefined,
    first: page > 2 ? link(1, 'First') : undefined,
    last: page < pages - 1 ? link(pages, 'Last') : undefined,
    sorts: SORT_KEYS.map((key) => ({ key, label: SORT_LABELS[key], href: consoleHref({ ...view, sort: key, page: 1 }, selected), current: key === view.sort })),
    sizes: PAGE_SIZES,
    view: shown,
    fleetEmpty: sorted.length === 0,
  };
}

/** Every tag some node carries, sorted (the filter offers them; empty when the fleet uses no tags). */
export function tagsOf(state: FleetState): string[] {
  const s = new Set<string>();
  for (const n of state.nodes.values()) for (const t of n.tags) s.add(t);
  return [...s].sort();
}

export function profilesOf(state: FleetState): string[] {
  const s = new Set<string>();
  for (const n of state.nodes.values()) s.add(n.os_profile);
  return [...s].sort();
}

// ---------------------------------------------------------------- fleet overview (nothing selected)

export interface CommandLine {
  id: string;
  action: string;
  nodeId: string;
  hostname: string;
  shortId: string;
  status: string;
  issuedAt: string;
  clock: string;
  by: string;
  href: string;
}

/** The latest commands, newest first: what the centre panel lists when no node is selected. */
export function recentCommands(state: FleetState, filter: ListFilter = NO_FILTER, limit = 8): CommandLine[] {
  const out: CommandLine[] = [];
  // byId keeps issue order; reading its tail needs the values as an array (bounded by the commands ever issued).
  const all = [...state.commands.byId.values()];
  for (let i = all.length - 1; i >= 0 && out.length < limit; i--) {
    const c = all[i]!;
    const node = state.nodes.get(c.node_id);
    out.push({
      id: c.id,
      action: c.action,
      nodeId: c.node_id,
      hostname: node?.hostname ?? c.node_id,
      shortId: shortId(c.node_id),
      status: c.status,
      issuedAt: c.issued_at,
      clock: formatClock(c.issued_at),
      by: c.issued_by,
      href: consoleHref(filter, c.node_id),
    });
  }
  return out;
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

/**
 * Why a node needs attention: the attention model's reasons (attention.ts), or how long an offline node is silent
 * and, once its outage is journaled (outages.ts), since when and which heartbeat was its last.
 */
export function attentionReasons(node: NodeRecord, status: NodeStatus, nowMs: number, policy: StatusPolicy, outage?: NodeOutage): string[] {
  if (status === 'offline') {
    if (!node.last_seen) return ['approved, waiting for its first heartbeat'];
    const silent = `no heartbeat for ${formatDuration(nowMs - Date.parse(node.last_seen))}`;
    return outage && !outage.returned ? [`${silent}; offline since ${formatStamp(outage.offline_ts)}, last heartbeat seq ${outage.last_heartbeat_seq}`] : [silent];
  }
  if (node.enrollment !== 'approved') return [];
  return assessNode(node, nowMs, policy).reasons.map((r) => r.message);
}

export interface AttentionItem {
  id: string;
  hostname: string;
  shortId: string;
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
      shortId: shortId(node.node_id),
      pill: nodePill(node, status),
      reasons: attentionReasons(node, status, ctx.nowMs, ctx.policy, state.outages.get(node.node_id)),
      href: consoleHref(ctx.filter, node.node_id),
    })),
    more: Math.max(0, picked.length - limit),
  };
}

// ---------------------------------------------------------------- envelopes: feed and timeline

export type { DescribeContext };

/** The command status an envelope reports (command lifecycle events and receipts), or ''. */
export function envelopeStatus(env: Envelope): string {
  const e = readEnvelope(env);
  if (e?.kind === 'command') return e.body.status ?? '';
  if (e?.kind === 'receipt') return e.body.payload?.status ?? '';
  return '';
}

/** A one-line description of any envelope kind, for the feed and timelines (the same text as `vaultmesh logs view`). */
export function describeEnvelope(env: Envelope, ctx: DescribeContext = {}): string {
  return describe(env, ctx);
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
  /** Command status (command events and receipts), for styling; '' otherwise. */
  status: string;
}

const ISO_IN_TEXT = /\b\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?Z\b/g;

/**
 * RFC 3339 times inside a description (`expires 2026-12-03T13:32:59.506Z`) as `2026‑12‑03 13:32:59 UTC` that
 * cannot break across lines (non-breaking hyphens and spaces): a narrow panel otherwise wraps them mid-date or
 * leaves a lone `Z` on the next line.
 */
export function readableTimes(text: string): string {
  return text.replace(ISO_IN_TEXT, (iso) => formatStamp(iso).replace(/-/g, '\u2011').replace(/ /g, '\u00a0'));
}

/** At most `max` characters, cut at a word boundary when one is near, marked with an ellipsis. */
export function clip(text: string, max: number): string {
  if (text.length <= max) return text;
  const cut = text.slice(0, max - 2);
  const space = cut.lastIndexOf(' ');
  return `${space > max * 0.6 ? cut.slice(0, space) : cut} …`;
}

export function feedDomId(seq: number): string {
  return `ev-${seq}`;
}

export function feedItem(env: Envelope, filter: ListFilter = NO_FILTER, ctx: DescribeContext = {}): FeedItem {
  return {
    seq: env.seq,
    domId: feedDomId(env.seq),
    ts: env.ts,
    clock: formatClock(env.ts),
    kind: env.kind,
    nodeId: env.node_id ?? '',
    text: readableTimes(clip(describeEnvelope(env, ctx), 300)),
    author: env.author,
    href: env.node_id ? consoleHref(filter, env.node_id) : '',
    status: envelopeStatus(env),
  };
}

/**
 * Whether an envelope belongs in the global feed and timelines: heartbeats would drown everything else (timelines
 * fold them), and a command's `completed` event says no more than the receipt journaled beside it.
 */
export function isFeedEnvelope(env: Pick<Envelope, 'kind' | 'body'>): boolean {
  if (env.kind === 'heartbeat') return false;
  return !(env.kind === 'command' && (env.body as Partial<BodyOf<'command'>>).event === 'completed');
}

/** Newest first, at most `limit`. */
export function feedItems(recent: readonly Envelope[], filter: ListFilter = NO_FILTER, limit = 50, ctx: DescribeContext = {}): FeedItem[] {
  const out: FeedItem[] = [];
  for (let i = recent.length - 1; i >= 0 && out.length < limit; i--) {
    const env = recent[i]!;
    if (isFeedEnvelope(env)) out.push(feedItem(env, filter, ctx));
  }
  return out;
}

export type TimelineItem =
  | { type: 'heartbeats'; count: number; from: string; to: string; fromClock: string; toClock: string }
  | { type: 'event'; seq: number; kind: string; clock: string; ts: string; text: string; author: string; status: string };

/**
 * A node's timeline, newest first, with runs of consecutive heartbeats folded into one line; commands show their
 * lifecycle (issued, delivered, expired) and receipts their outcome.
 */
export function timeline(envelopes: readonly Envelope[], limit = 40, ctx: DescribeContext = {}): TimelineItem[] {
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
    } else if (isFeedEnvelope(env)) {
      out.push({ type: 'event', seq: env.seq, kind: env.kind, clock: formatClock(env.ts), ts: env.ts, text: readableTimes(describeEnvelope(env, ctx)), author: env.author, status: envelopeStatus(env) });
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

export const SEVERITY_ORDER = SEVERITIES;
/** Severities of open findings: the scan state keeps everything above `info` (scan-state.ts). */
export const OPEN_SEVERITIES = ACTIONABLE_SEVERITIES;

export interface FindingView {
  nodeId: string;
  hostname: string;
  severity: string;
  check: string;
  title: string;
  href: string;
}

/** What the console needs of a node's latest scan (`NodeRecord.latest_scan`, kept by scan-state.ts). */
export interface ScanLike {
  finished_at: string;
  trigger: string;
  summary: { critical: number; high: number; medium: number; low: number; info: number; checks_run: number; checks_failed: number };
  open_findings: ReadonlyArray<{ severity: string; check: string; title: string }>;
}

/**
 * Open findings across the fleet from each node's latest scan (so they survive restarts and do not depend on the
 * event window), counted per severity, with the first `perSeverity` of each. Rejected and revoked nodes are left out.
 */
export function findingsBySeverity(
  state: FleetState,
  filter: ListFilter = NO_FILTER,
  perSeverity = 5,
): Array<{ severity: string; count: number; items: FindingView[] }> {
  const groups = new Map<string, FindingView[]>(OPEN_SEVERITIES.map((s) => [s, []]));
  for (const n of state.nodes.values()) {
    const scan: ScanLike | undefined = n.latest_scan;
    if (!scan || n.enrollment === 'rejected' || n.enrollment === 'revoked') continue;
    for (const f of scan.open_findings) {
      groups.get(f.severity)?.push({ nodeId: n.node_id, hostname: n.hostname, severity: f.severity, check: f.check, title: f.title, href: consoleHref(filter, n.node_id) });
    }
  }
  return OPEN_SEVERITIES.map((severity) => {
    const all = groups.get(severity)!;
    return { severity, count: all.length, items: all.slice(0, perSeverity) };
  });
}

export interface ScanView {
  finishedAt: string;
  clock: string;
  trigger: string;
  /** `1 critical · 2 high · 0 medium · 3 low · 5 info — 12 checks (1 failed)` */
  summary: string;
  findings: Array<{ severity: string; check: string; title: string }>;
  more: number;
}

/** A node's latest scan for the detail panel: summary line and open findings, most severe first. */
export function scanView(scan: ScanLike | undefined, limit = 20): ScanView | undefined {
  if (!scan) return undefined;
  const s = scan.summary;
  const counts = SEVERITY_ORDER.map((k) => `${s[k]} ${k}`).join(' · ');
  const sorted = [...scan.open_findings].sort((a, b) => SEVERITY_ORDER.indexOf(a.severity as never) - SEVERITY_ORDER.indexOf(b.severity as never));
  return {
    finishedAt: scan.finished_at,
    clock: formatClock(scan.finished_at),
    trigger: scan.trigger,
    summary: `${counts} — ${s.checks_run} check${s.checks_run === 1 ? '' : 's'}${s.checks_failed ? ` (${s.checks_failed} failed)` : ''}`,
    findings: sorted.slice(0, limit).map((f) => ({ severity: f.severity, check: f.check, title: f.title })),
    more: Math.max(0, sorted.length - limit),
  };
}

// ---------------------------------------------------------------- orchestrator schedule

export interface ScheduleRow {
  action: string;
  state: string;
  nextAt: string;
  nextClock: string;
  every: string;
  lastAt: string;
  lastStatus: string;
  blockedReason: string;
  /** Why a maintenance window moved the next run ('' when none did). */
  maintenance: string;
}

/** The node's scheduled runs (orchestrator.view), soonest first; absolute times only, so the panel does not churn. */
export function scheduleRows(view: Pick<NodeScheduleView, 'runs'> | undefined): ScheduleRow[] {
  if (!view) return [];
  return [...view.runs]
    .sort((a, b) => (a.next_run_at < b.next_run_at ? -1 : a.next_run_at > b.next_run_at ? 1 : 0))
    .map((r) => ({
      action: r.action,
      state: r.state,
      nextAt: r.next_run_at,
      nextClock: `${r.next_run_at.slice(0, 10)} ${formatClock(r.next_run_at)}`,
      every: formatDuration(r.every_secs * 1000),
      lastAt: r.last_run_at ?? '',
      lastStatus: r.last_status ?? '',
      blockedReason: r.blocked_reason ?? '',
      maintenance: r.maintenance ? `${r.maintenance.scans === 'skip' ? 'skipped' : 'deferred'} by maintenance ${r.maintenance.window_id} until ${r.maintenance.until.slice(11, 16)} UTC` : '',
    }));
}

// ---------------------------------------------------------------- command form

export interface CommandArgField {
  /** Form field name: `<action>.<arg>`, so each action's inputs are distinct and need no script to work. */
  name: string;
  id: string;
  label: string;
  input: 'select' | 'text' | 'number';
  options: string[];
  required: boolean;
  min?: number;
  max?: number;
  value?: string;
}

export interface CommandFormView {
  /** Whether the form can be submitted now. */
  available: boolean;
  /** Why not, when it cannot. */
  reason: string;
  node?: string;
  hostname?: string;
  profile?: string;
  /** The policy profile that applies (the node's own or `*`). */
  policyProfile?: string;
  /** `approvals`: how many other operators must approve it before it is signed (absent: none). */
  actions: Array<{ name: string; args: CommandArgField[]; approvals?: number }>;
}

const fieldId = (name: string) => `cmd-${name.replace(/[^A-Za-z0-9-]/g, '-')}`;

function unitField(action: string, patterns: readonly string[], reported: readonly string[]): CommandArgField | undefined {
  if (!patterns.length) return undefined; // the policy allows the action but no unit: nothing could be sent
  const exact = patterns.every((p) => !p.endsWith('*'));
  const name = `${action}.unit`;
  if (exact) return { name, id: fieldId(name), label: `Unit for ${action}`, input: 'select', options: [...patterns].sort(), required: true };
  // Patterns: a free unit name (the policy decides on submit), suggesting the units the node reports that match.
  const suggestions = new Set([...patterns.filter((p) => !p.endsWith('*')), ...reported.filter((u) => unitMatches(patterns, u))]);
  return { name, id: fieldId(name), label: `Unit for ${action}`, input: 'text', options: [...suggestions].sort(), required: true };
}

/**
 * What the command form offers for the selected node: only the actions the policy allows for the node's os_profile
 * (in the built-in catalogue's order), each with its argument inputs (units from the policy's lists).
 */
export function commandForm(
  policy: CommandPolicy | undefined,
  node: Pick<NodeRecord, 'node_id' | 'hostname' | 'os_profile' | 'enrollment' | 'last_heartbeat'> | undefined,
  ctx: { canIssue: boolean },
): CommandFormView {
  const none = (reason: string, extra: Partial<CommandFormView> = {}): CommandFormView => ({ available: false, reason, actions: [], ...extra });
  if (!policy) return none('Commands are not enabled on this center.');
  if (!node) return none('Select a node to send it a command.');
  const who = { node: node.node_id, hostname: node.hostname, profile: node.os_profile };
  if (!ctx.canIssue) return none('Sending commands needs the commands:write scope.', who);
  if (node.enrollment !== 'approved') return none(`This node is ${node.enrollment}; only approved nodes take commands.`, who);
  const found = policyProfileFor(policy, node.os_profile);
  if (!found) return none(`The policy has no profile for os_profile ${node.os_profile} (and no * profile).`, who);
  const { name: policyProfile, profile } = found;
  const reported = Object.keys(node.last_heartbeat?.services ?? {});
  const actions: CommandFormView['actions'] = [];
  for (const action of ACTION_NAMES) {
    if (!profile.actions.includes(action)) continue;
    const args: CommandArgField[] = [];
    if (UNIT_ACTIONS.has(action)) {
      const f = unitField(action, action === 'service-restart' ? profile.restart_units : profile.units, reported);
      if (!f) continue;
      args.push(f);
    }
    if (action === 'collect-journal') {
      const name = `${action}.lines`;
      args.push({ name, id: fieldId(name), label: 'Lines', input: 'number', options: [], required: false, min: 1, max: MAX_JOURNAL_LINES, value: '100' });
    }
    const approvals = Object.hasOwn(profile.approvals, action) ? profile.approvals[action]! : 0;
    actions.push({ name: action, args, ...(approvals > 0 ? { approvals } : {}) });
  }
  if (!actions.length) return none(`The policy allows no action for os_profile ${node.os_profile} (profile ${policyProfile}).`, { ...who, policyProfile });
  return { available: true, reason: '', ...who, policyProfile, actions };
}

/** The args of `action` from the form's `<action>.<arg>` fields; empty fields are left out (defaults apply). */
export function commandArgsFromForm(action: string, form: Record<string, unknown>): Record<string, string> {
  const prefix = `${action}.`;
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(form)) {
    if (!k.startsWith(prefix) || typeof v !== 'string') continue;
    const value = v.trim();
    if (value) out[k.slice(prefix.length)] = value;
  }
  return out;
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
  /** Key rotations, newest first (fleet/node-keys.ts). */
  keyRotations: Array<{ oldKeyId: string; newKeyId: string; at: string; clock: string; validUntil: string }>;
  lastSeen: string;
  firstSeen: string;
  /** The same times for reading (`2025-01-01 12:00:01 UTC`); the ISO forms go in `datetime` and `title`. */
  lastSeenText: string;
  firstSeenText: string;
  /** Approved and never heard from: the detail says it waits for the first heartbeat. */
  waiting: boolean;
  heartbeats: number;
  uptime: string;
  tunnel: string;
  facts: Array<[string, string]>;
  services: Array<{ unit: string; state: string; ok: boolean }>;
  spark: { load: Sparkline; mem: Sparkline; disk: Sparkline };
  mem: string;
  disk: string;
  scan: ScanView | undefined;
  schedule: ScheduleRow[];
  timeline: TimelineItem[];
  reasons: string[];
}

export function nodeDetail(
  node: NodeRecord,
  status: NodeStatus,
  ctx: {
    nowMs: number;
    policy: StatusPolicy;
    envelopes: readonly Envelope[];
    /** The orchestrator's view of this node (its scheduled runs), when the orchestrator runs. */
    schedule?: Pick<NodeScheduleView, 'runs'> | undefined;
    describe?: DescribeContext;
    /** Its open outage, if it was declared offline (outages.ts). */
    outage?: NodeOutage | undefined;
  },
): NodeDetailView {
  const hb = node.last_heartbeat;
  const samples = node.history.samples();
  const pct = (u: number, t: number) => percent(u, t) ?? Number.NaN;
  const fmtPct = (v: number) => `${Math.round(v)}%`;
  const m = hb?.metrics;
  return {
    id: node.node_id,
    hostname: node.hostname,
    profile: node.os_profile,
    pill: nodePill(node, status),
    enrollment: node.enrollment,
    agentVersion: node.agent_version,
    keyId: node.key_id,
    keyRotations: keyRotations(node).map((r) => ({ oldKeyId: r.old_key_id, newKeyId: r.new_key_id, at: r.at, clock: formatStamp(r.at), validUntil: r.old_key_valid_until })),
    lastSeen: node.last_seen ?? '—',
    firstSeen: node.first_seen ?? '—',
    lastSeenText: node.last_seen ? formatStamp(node.last_seen) : node.enrollment === 'approved' ? 'waiting for the first heartbeat' : '—',
    firstSeenText: formatStamp(node.first_seen),
    waiting: node.enrollment === 'approved' && !node.last_seen,
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
    scan: scanView(node.latest_scan),
    schedule: scheduleRows(ctx.schedule),
    timeline: timeline(ctx.envelopes, 40, ctx.describe),
    reasons: attentionReasons(node, status, ctx.nowMs, ctx.policy, ctx.outage),
  };
}

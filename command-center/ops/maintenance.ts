/**
 * Maintenance windows: the reducer for `maintenance` envelopes, which nodes a window covers, and what it held back.
 * Pure: everything is a function of the journal and a time, so a restart (or a state snapshot) mid-window keeps
 * silencing and the window ends on time whether or not its `ended` envelope was written yet.
 *
 * A window covers a node when its target matches the node (node_id, os_profile, or a tag the node carries at that
 * moment) and the time is in [starts_at, ends_at) and no `ended` envelope closed it. Coverage is about the host, not
 * its connection: an offline node is covered like any other.
 */
import type { EnvelopeOf } from '../../protocol/envelope-kinds.js';
import type { Envelope } from '../../protocol/envelope.js';
import type { MaintenanceScanRule, MaintenanceTarget } from '../../protocol/maintenance.js';
import type { FleetState, NodeRecord } from '../fleet/fleet-state.js';

export interface MaintenanceWindow {
  id: string;
  target: MaintenanceTarget;
  reason: string;
  scans: MaintenanceScanRule;
  starts_at: string;
  ends_at: string;
  startsMs: number;
  /** Planned end; an early end sets `ended_at` before it. */
  endsMs: number;
  created_by: string;
  created_at: string;
  seq: number;
  /** Set once an `ended` envelope closed the window. */
  ended_at?: string;
  endedMs?: number;
  ended_by?: string;
  ended_early?: boolean;
  /** The seq of the `ended` envelope that closed it (the one that gets the summary webhook). */
  ended_seq?: number;
  extended?: number;
  /** Webhook-worthy envelopes about covered nodes while the window was active, per kind and per node. */
  held: HeldCounts;
}

export interface HeldCounts {
  total: number;
  by_kind: Record<string, number>;
  by_node: Record<string, number>;
}

export interface MaintenanceState {
  windows: Map<string, MaintenanceWindow>;
  /**
   * The windows not ended yet (a subset of `windows`): what coverage checks scan. The console assesses every node
   * of a large fleet each second, and the kept ended windows must not make that pass slower.
   */
  open: Map<string, MaintenanceWindow>;
  /** Ended windows dropped (oldest first) to keep at most `keepEnded`. */
  forgotten: number;
}

/** Ended windows kept for `GET /api/maintenance?recent=1`, the console and the orchestrator's `skip` arithmetic. */
export const KEEP_ENDED_WINDOWS = 200;

/**
 * Kinds counted as held for a covered node: the ones webhooks deliver (ops/webhooks.ts WEBHOOK_KINDS, kept in step by
 * a test). Named here so this module stays free of the webhook IO module.
 */
export const HELD_KINDS: ReadonlySet<string> = new Set(['attention', 'incident', 'ack', 'resolve', 'offline', 'rejoin']);

export function createMaintenanceState(): MaintenanceState {
  return { windows: new Map(), open: new Map(), forgotten: 0 };
}

/** The end that counts: the early end when there was one, else the planned end. */
export function windowEndMs(w: MaintenanceWindow): number {
  return w.endedMs !== undefined ? Math.min(w.endedMs, w.endsMs) : w.endsMs;
}

export function isActive(w: MaintenanceWindow, nowMs: number): boolean {
  return w.endedMs === undefined && nowMs >= w.startsMs && nowMs < w.endsMs;
}

/** Not ended and not yet past its end (active or scheduled to start). */
export function isOpen(w: MaintenanceWindow, nowMs: number): boolean {
  return w.endedMs === undefined && nowMs < w.endsMs;
}

export function targetMatches(target: MaintenanceTarget, node: Pick<NodeRecord, 'node_id' | 'os_profile' | 'tags'>): boolean {
  // Property reads rather than `in`: this runs per node per open window in the console's status pass.
  const t = target as { node_id?: string; os_profile?: string; tag?: string };
  if (t.node_id !== undefined) return node.node_id === t.node_id;
  if (t.os_profile !== undefined) return node.os_profile === t.os_profile;
  return node.tags.includes(t.tag!);
}

/** The windows active at `nowMs` that cover the node (usually none; windows are few, so a scan of them is cheap). */
export function activeWindowsFor(state: FleetState, node: Pick<NodeRecord, 'node_id' | 'os_profile' | 'tags'>, nowMs: number): MaintenanceWindow[] {
  const m = state.maintenance;
  if (!m || m.open.size === 0) return [];
  const out: MaintenanceWindow[] = [];
  for (const w of m.open.values()) if (isActive(w, nowMs) && targetMatches(w.target, node)) out.push(w);
  return out;
}

/** Whether an active window covers the node at `nowMs`: the attention model asks this for every node it assesses. */
export function isCovered(state: FleetState, node: Pick<NodeRecord, 'node_id' | 'os_profile' | 'tags'>, nowMs: number): boolean {
  const m = state.maintenance;
  if (!m || m.open.size === 0) return false;
  for (const w of m.open.values()) if (isActive(w, nowMs) && targetMatches(w.target, node)) return true;
  return false;
}

/** The covering window that lasts longest (what the console and the orchestrator show), or undefined. */
export function coveringWindow(state: FleetState, node: Pick<NodeRecord, 'node_id' | 'os_profile' | 'tags'>, nowMs: number): MaintenanceWindow | undefined {
  let best: MaintenanceWindow | undefined;
  for (const w of activeWindowsFor(state, node, nowMs)) if (!best || w.endsMs > best.endsMs) best = w;
  return best;
}

/** Node ids a window covers now (approved or not: a window is about the host). */
export function coveredNodes(state: FleetState, w: MaintenanceWindow): string[] {
  if ('node_id' in w.target) return state.nodes.has(w.target.node_id) ? [w.target.node_id] : [];
  const out: string[] = [];
  for (const n of state.nodes.values()) if (targetMatches(w.target, n)) out.push(n.node_id);
  return out;
}

/** Windows not yet ended whose end time has passed: the leader journals their `ended` (maintenance-timer.ts). */
export function overdueWindows(state: FleetState, nowMs: number): MaintenanceWindow[] {
  const m = state.maintenance;
  if (!m) return [];
  return [...m.open.values()].filter((w) => w.endsMs <= nowMs);
}

/** The next planned end of an open window after `nowMs` (the leader's timer sleeps until then). */
export function nextEndMs(state: FleetState): number | undefined {
  let next: number | undefined;
  for (const w of state.maintenance?.open.values() ?? []) if (next === undefined || w.endsMs < next) next = w.endsMs;
  return next;
}

/** Reducer for `maintenance` envelopes. Unknown window ids and repeated ends change nothing. */
export function applyMaintenanceEvent(state: FleetState, env: EnvelopeOf<'maintenance'>): void {
  const m = (state.maintenance ??= createMaintenanceState());
  const b = env.body;
  switch (b.event) {
    case 'started': {
      if (m.windows.has(b.window_id)) return;
      const w: MaintenanceWindow = {
        id: b.window_id,
        target: b.target,
        reason: b.reason,
        scans: b.scans,
        starts_at: b.starts_at,
        ends_at: b.ends_at,
        startsMs: Date.parse(b.starts_at),
        endsMs: Date.parse(b.ends_at),
        created_by: env.author,
        created_at: env.ts,
        seq: env.seq,
        held: { total: 0, by_kind: {}, by_node: {} },
      };
      m.windows.set(w.id, w);
      m.open.set(w.id, w);
      return;
    }
    case 'extended': {
      const w = m.windows.get(b.window_id);
      if (!w || w.endedMs !== undefined) return;
      w.ends_at = b.ends_at;
      w.endsMs = Date.parse(b.ends_at);
      w.extended = (w.extended ?? 0) + 1;
      return;
    }
    case 'ended': {
      const w = m.windows.get(b.window_id);
      if (!w || w.endedMs !== undefined) return;
      // The timer's end is stamped with the planned end, not the (possibly late) time it was written.
      const at = b.early ? Date.parse(env.ts) : w.endsMs;
      w.endedMs = at;
      w.ended_at = new Date(at).toISOString();
      w.ended_by = env.author;
      w.ended_early = b.early;
      w.ended_seq = env.seq;
      m.open.delete(w.id);
      forgetOldEnded(m);
      return;
    }
  }
}

function forgetOldEnded(m: MaintenanceState): void {
  let ended = 0;
  for (const w of m.windows.values()) if (w.endedMs !== undefined) ended++;
  // Map order is start order: the oldest ended windows go first.
  for (const [id, w] of m.windows) {
    if (ended <= KEEP_ENDED_WINDOWS) break;
    if (w.endedMs === undefined) continue;
    m.windows.delete(id);
    m.forgotten++;
    ended--;
  }
}

/**
 * Counts an envelope a webhook would have carried against every window that covers its node at the envelope's time.
 * Called from `applyEnvelope` for every envelope, so it is a cheap no-op without windows.
 */
export function countHeld(state: FleetState, env: Envelope): void {
  if (!HELD_KINDS.has(env.kind) || !env.node_id || !state.maintenance?.open.size) return;
  const node = state.nodes.get(env.node_id);
  const t = Date.parse(env.ts);
  for (const w of state.maintenance.open.values()) {
    if (t < w.startsMs || t >= w.endsMs) continue;
    if (!(node ? targetMatches(w.target, node) : (w.target as { node_id?: string }).node_id === env.node_id)) continue;
    w.held.total++;
    w.held.by_kind[env.kind] = (w.held.by_kind[env.kind] ?? 0) + 1;
    w.held.by_node[env.node_id] = (w.held.by_node[env.node_id] ?? 0) + 1;
  }
}

/** Whether a webhook for this envelope is held: it is about a node that an active window covered at its time. */
export function isHeldEnvelope(state: FleetState, env: Envelope): boolean {
  if (!env.node_id || !state.maintenance?.open.size) return false;
  const node = state.nodes.get(env.node_id);
  const t = Date.parse(env.ts);
  for (const w of state.maintenance.open.values()) {
    if (t < w.startsMs || t >= w.endsMs) continue;
    if (node ? targetMatches(w.target, node) : (w.target as { node_id?: string }).node_id === env.node_id) return true;
  }
  return false;
}

/** The public view of a window (API, CLI, console). */
export interface MaintenanceView {
  id: string;
  target: MaintenanceTarget;
  reason: string;
  scans: MaintenanceScanRule;
  starts_at: string;
  ends_at: string;
  state: 'scheduled' | 'active' | 'ended';
  created_by: string;
  created_at: string;
  ended_at: string | null;
  ended_by: string | null;
  ended_early: boolean | null;
  extended: number;
  /** Nodes the window covers now. */
  nodes: string[];
  held: HeldCounts;
}

export function windowView(state: FleetState, w: MaintenanceWindow, nowMs: number): MaintenanceView {
  const st: MaintenanceView['state'] = !isOpen(w, nowMs) ? 'ended' : nowMs < w.startsMs ? 'scheduled' : 'active';
  return {
    id: w.id,
    target: w.target,
    reason: w.reason,
    scans: w.scans,
    starts_at: w.starts_at,
    ends_at: w.ends_at,
    state: st,
    created_by: w.created_by,
    created_at: w.created_at,
    ended_at: w.ended_at ?? (st === 'ended' ? w.ends_at : null),
    ended_by: w.ended_by ?? null,
    ended_early: w.ended_early ?? null,
    extended: w.extended ?? 0,
    nodes: coveredNodes(state, w),
    held: w.held,
  };
}

/** Open windows (active and scheduled), soonest end first; with `recent`, the ended ones kept too, newest first. */
export function listWindows(state: FleetState, nowMs: number, opts: { recent?: boolean; nodeId?: string } = {}): MaintenanceView[] {
  const all = [...(state.maintenance?.windows.values() ?? [])];
  const node = opts.nodeId ? state.nodes.get(opts.nodeId) : undefined;
  const about = (w: MaintenanceWindow) => !opts.nodeId || (node ? targetMatches(w.target, node) : 'node_id' in w.target && w.target.node_id === opts.nodeId);
  const open = all.filter((w) => isOpen(w, nowMs) && about(w)).sort((a, b) => a.endsMs - b.endsMs || (a.id < b.id ? -1 : 1));
  const ended = opts.recent ? all.filter((w) => !isOpen(w, nowMs) && about(w)).sort((a, b) => windowEndMs(b) - windowEndMs(a)) : [];
  return [...open, ...ended].map((w) => windowView(state, w, nowMs));
}

/** A window's span over one node, for the orchestrator: [fromMs, toMs) and what scheduled scans do in it. */
export interface MaintenanceSpan {
  windowId: string;
  fromMs: number;
  toMs: number;
  scans: MaintenanceScanRule;
}

/** Every kept window (past, active, scheduled) that covers the node, as spans in start order. */
export function maintenanceSpans(state: FleetState, node: Pick<NodeRecord, 'node_id' | 'os_profile' | 'tags'>): MaintenanceSpan[] {
  const m = state.maintenance;
  if (!m || m.windows.size === 0) return [];
  const out: MaintenanceSpan[] = [];
  for (const w of m.windows.values()) {
    const toMs = windowEndMs(w);
    if (toMs > w.startsMs && targetMatches(w.target, node)) out.push({ windowId: w.id, fromMs: w.startsMs, toMs, scans: w.scans });
  }
  return out.sort((a, b) => a.fromMs - b.fromMs);
}

/**
 * What the single webhook sent when a window ends carries besides its `ended` envelope: the window and what it held
 * (counts per kind and per node). Undefined for other maintenance steps (they send nothing).
 */
export function maintenanceSummary(state: FleetState, env: Envelope): Record<string, unknown> | undefined {
  if (env.kind !== 'maintenance') return undefined;
  const b = env.body as { event?: unknown; window_id?: unknown };
  if (b.event !== 'ended' || typeof b.window_id !== 'string') return undefined;
  const w = state.maintenance?.windows.get(b.window_id);
  // Only the end that closed the window: a second `ended` (which the service's claim prevents) sends nothing.
  if (!w || w.ended_seq !== env.seq) return undefined;
  return {
    maintenance: {
      window_id: w.id,
      target: w.target,
      reason: w.reason,
      starts_at: w.starts_at,
      ends_at: w.ends_at,
      ended_at: w.ended_at ?? w.ends_at,
      ended_early: w.ended_early ?? false,
      held: w.held,
    },
  };
}

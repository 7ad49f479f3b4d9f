/**
 * What the console shows of maintenance windows: the MAINT badge of a node row, and the node detail's maintenance
 * section (the windows covering the node now, with an End button, or the form to start one). Pure view models.
 */
import { describeTarget, MAINTENANCE_SCAN_RULES } from '../../protocol/maintenance.js';
import type { FleetState, NodeRecord } from '../fleet/fleet-state.js';
import { activeWindowsFor, coveringWindow, listWindows } from '../ops/maintenance.js';

/** Durations the console's form offers (seconds); the CLI and the API take any length up to 30 days. */
export const CONSOLE_DURATIONS: ReadonlyArray<{ secs: number; label: string }> = [
  { secs: 1800, label: '30 minutes' },
  { secs: 3600, label: '1 hour' },
  { secs: 7200, label: '2 hours' },
  { secs: 4 * 3600, label: '4 hours' },
  { secs: 8 * 3600, label: '8 hours' },
  { secs: 24 * 3600, label: '24 hours' },
];

const clock = (iso: string) => `${iso.slice(0, 10)} ${iso.slice(11, 16)} UTC`;

/** The row badge's tooltip when a window covers the node now, else undefined (no badge). */
export function maintenanceBadge(state: FleetState, node: NodeRecord, nowMs: number): string | undefined {
  const w = coveringWindow(state, node, nowMs);
  return w ? `in maintenance until ${clock(w.ends_at)}: ${w.reason}` : undefined;
}

export interface MaintenancePanel {
  active: Array<{ id: string; target: string; reason: string; until: string; untilText: string; by: string; scans: string; held: number }>;
  /** Windows that will cover the node later. */
  scheduled: Array<{ id: string; target: string; reason: string; from: string; fromText: string; until: string; untilText: string }>;
  durations: typeof CONSOLE_DURATIONS;
  scanRules: readonly string[];
}

export function maintenancePanel(state: FleetState, node: NodeRecord, nowMs: number): MaintenancePanel {
  const active = activeWindowsFor(state, node, nowMs)
    .sort((a, b) => a.endsMs - b.endsMs)
    .map((w) => ({ id: w.id, target: describeTarget(w.target), reason: w.reason, until: w.ends_at, untilText: clock(w.ends_at), by: w.created_by, scans: w.scans, held: w.held.total }));
  const scheduled = listWindows(state, nowMs, { nodeId: node.node_id })
    .filter((w) => w.state === 'scheduled')
    .map((w) => ({ id: w.id, target: describeTarget(w.target), reason: w.reason, from: w.starts_at, fromText: clock(w.starts_at), until: w.ends_at, untilText: clock(w.ends_at) }));
  return { active, scheduled, durations: CONSOLE_DURATIONS, scanRules: MAINTENANCE_SCAN_RULES };
}

/** The fleet overview's list of open windows (no buttons: that panel is rendered once for every client). */
export function maintenanceOverview(state: FleetState, nowMs: number) {
  return listWindows(state, nowMs).map((w) => ({
    id: w.id,
    target: describeTarget(w.target),
    reason: w.reason,
    state: w.state,
    from: w.starts_at,
    fromText: clock(w.starts_at),
    until: w.ends_at,
    untilText: clock(w.ends_at),
    nodes: w.nodes.length,
    by: w.created_by,
  }));
}

/**
 * The start form for the selected node: it covers the node, every node of its profile, or every node carrying one
 * of its tags (`cover` = `node`, `os_profile` or `tag:<tag>`).
 */
export function maintenanceFormView(available: boolean, node: NodeRecord | undefined) {
  return {
    available,
    node: node?.node_id,
    covers: node
      ? [
          { value: 'node', label: `this node (${node.node_id})` },
          { value: 'os_profile', label: `every ${node.os_profile} node` },
          ...node.tags.map((t) => ({ value: `tag:${t}`, label: `every node tagged ${t}` })),
        ]
      : [],
    osProfile: node?.os_profile,
    durations: CONSOLE_DURATIONS,
    scanRules: MAINTENANCE_SCAN_RULES,
  };
}

/** The form's `cover` choice as the target fields of a start request (validated by its schema afterwards). */
export function consoleTarget(cover: string, nodeId: string, osProfile: string): { node_id?: string; os_profile?: string; tag?: string } {
  if (cover === '' || cover === 'node') return { node_id: nodeId };
  if (cover === 'os_profile') return { os_profile: osProfile };
  if (cover.startsWith('tag:')) return { tag: cover.slice(4) };
  return {};
}

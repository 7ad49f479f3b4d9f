/**
 * Gathers what every console panel shows from the live services (state, the bus's recent envelopes, the ledger),
 * by calling the pure view-model functions. Used for the full page and for the stream's full-state fragment.
 */
import type { Envelope } from '../../protocol/envelope.js';
import type { FleetState } from '../fleet-state.js';
import type { StatusPolicy } from '../node-status.js';
import type { EventBus } from '../event-bus.js';
import {
  attentionSummary,
  computeStatuses,
  feedItems,
  findingsBySeverity,
  latestScansFromState,
  missionBar,
  nodeDetail,
  nodeRows,
  pendingEnrollments,
  type LedgerRootView,
  type ListFilter,
  type StatusMap,
} from './view-model.js';

/** The parts of Services the console reads (kept narrow so tests and benches can build it from plain objects). */
export interface ConsoleSource {
  state: FleetState;
  bus: Pick<EventBus, 'recent'>;
  statusPolicy: StatusPolicy;
  startedAt: Date;
  now(): Date;
  /** Present once the ledger is wired into the center. */
  ledger?: unknown;
}

export interface PanelContext {
  filter: ListFilter;
  selected?: string | undefined;
}

/** The ledger root for the mission bar, whatever shape `services.ledger` has (one ledger or one per journal). */
export function ledgerRootOf(src: ConsoleSource): LedgerRootView | undefined {
  const l = src.ledger as { root?: () => LedgerRootView; scans?: { root?: () => LedgerRootView } } | undefined;
  try {
    if (typeof l?.root === 'function') return l.root();
    if (typeof l?.scans?.root === 'function') return l.scans.root();
  } catch {
    return undefined; // a ledger that cannot answer shows "—" rather than breaking the console
  }
  return undefined;
}

/** Everything the bus still retains (the console's window on history). */
export function recentEnvelopes(src: ConsoleSource): Envelope[] {
  return src.bus.recent(0, Number.MAX_SAFE_INTEGER);
}

export function nodeEnvelopes(recent: readonly Envelope[], nodeId: string): Envelope[] {
  return recent.filter((e) => e.node_id === nodeId);
}

export function buildPanels(src: ConsoleSource, ctx: PanelContext, nowMs = src.now().getTime(), statuses: StatusMap = computeStatuses(src.state, nowMs, src.statusPolicy)) {
  const recent = recentEnvelopes(src);
  const scans = latestScansFromState(src.state);
  const sel = ctx.selected ? src.state.nodes.get(ctx.selected) : undefined;
  return {
    statuses,
    bar: missionBar(statuses, { seq: src.state.lastSeq, nowMs, startedAtMs: src.startedAt.getTime(), ledger: ledgerRootOf(src) }),
    rows: nodeRows(src.state, statuses, ctx.filter, ctx.selected),
    pending: pendingEnrollments(src.state),
    attention: attentionSummary(src.state, statuses, { nowMs, policy: src.statusPolicy, filter: ctx.filter }),
    findings: findingsBySeverity(scans, src.state, ctx.filter),
    feed: feedItems(recent, ctx.filter),
    detail: sel ? nodeDetail(sel, statuses.get(sel.node_id)!, { nowMs, policy: src.statusPolicy, envelopes: nodeEnvelopes(recent, sel.node_id), scan: scans.get(sel.node_id) }) : undefined,
  };
}

export type Panels = ReturnType<typeof buildPanels>;

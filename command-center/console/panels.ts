/**
 * Gathers what every console panel shows from the live services (state, the bus's recent envelopes, the ledger),
 * by calling the pure view-model functions. Used for the full page and for the stream's full-state fragment.
 */
import type { Envelope } from '../../protocol/envelope.js';
import type { FleetState, NodeRecord } from '../fleet/fleet-state.js';
import type { NodeStatus, StatusPolicy } from '../fleet/node-status.js';
import type { EventBus } from '../http/event-bus.js';
import type { Orchestrator } from '../ops/orchestrator.js';
import {
  attentionSummary,
  computeStatuses,
  feedItems,
  findingsBySeverity,
  missionBar,
  nodeDetail,
  nodeRows,
  pendingEnrollments,
  type DescribeContext,
  type LedgerRootView,
  type ListFilter,
  type NodeDetailView,
  type StatusMap,
} from './view-model.js';

/** The parts of Services the console reads (kept narrow so tests and benches can build it from plain objects). */
export interface ConsoleSource {
  state: FleetState;
  bus: Pick<EventBus, 'recent'>;
  statusPolicy: StatusPolicy;
  startedAt: Date;
  now(): Date;
  /** The ledgers over sovereign-scans.jsonl and commands.jsonl; the mission bar shows the scan ledger's root. */
  ledgers?: { scans: { root(): LedgerRootView } } | undefined;
  /** The agents' cosignatures on the scan checkpoints: the mission bar shows how many witnessed the latest. */
  witnesses?: { status(log: 'scans'): { witnessed_latest: number; forks: readonly unknown[] } } | undefined;
  /** Scheduled scans, when the orchestrator runs: the node detail shows the next run. */
  orchestrator?: Pick<Orchestrator, 'view'> | null | undefined;
}

export interface PanelContext {
  filter: ListFilter;
  selected?: string | undefined;
}

/** The scan ledger's current root for the mission bar (every appended scan, signed head or not). */
export function ledgerRootOf(src: ConsoleSource): LedgerRootView | undefined {
  const root = src.ledgers?.scans.root();
  const w = src.witnesses?.status('scans');
  return root && w ? { ...root, witnessed: w.witnessed_latest, forks: w.forks.length } : root;
}

/** Lookups the feed and timelines use to name a command's action in its later events and receipt. */
export function describeContextOf(src: ConsoleSource): DescribeContext {
  return { actionOf: (id) => src.state.commands.byId.get(id)?.action };
}

/** Everything the bus still retains (the console's window on history). */
export function recentEnvelopes(src: ConsoleSource): Envelope[] {
  return src.bus.recent(0, Number.MAX_SAFE_INTEGER);
}

export function nodeEnvelopes(recent: readonly Envelope[], nodeId: string): Envelope[] {
  return recent.filter((e) => e.node_id === nodeId);
}

/** The selected node's detail: its envelopes in the window, its latest scan, and its schedule. */
export function detailOf(src: ConsoleSource, node: NodeRecord, status: NodeStatus, nowMs: number, recent: readonly Envelope[]): NodeDetailView {
  return nodeDetail(node, status, {
    nowMs,
    policy: src.statusPolicy,
    envelopes: nodeEnvelopes(recent, node.node_id),
    schedule: src.orchestrator?.view({ nodeId: node.node_id })[0],
    describe: describeContextOf(src),
  });
}

export function buildPanels(src: ConsoleSource, ctx: PanelContext, nowMs = src.now().getTime(), statuses: StatusMap = computeStatuses(src.state, nowMs, src.statusPolicy)) {
  const recent = recentEnvelopes(src);
  const sel = ctx.selected ? src.state.nodes.get(ctx.selected) : undefined;
  return {
    statuses,
    bar: missionBar(statuses, { seq: src.state.lastSeq, nowMs, startedAtMs: src.startedAt.getTime(), ledger: ledgerRootOf(src) }),
    rows: nodeRows(src.state, statuses, ctx.filter, ctx.selected),
    pending: pendingEnrollments(src.state),
    attention: attentionSummary(src.state, statuses, { nowMs, policy: src.statusPolicy, filter: ctx.filter }),
    findings: findingsBySeverity(src.state, ctx.filter),
    feed: feedItems(recent, ctx.filter, 50, describeContextOf(src)),
    detail: sel ? detailOf(src, sel, statuses.get(sel.node_id)!, nowMs, recent) : undefined,
  };
}


/**
 * Gathers what every console panel shows from the live services (state, the bus's recent envelopes, the ledger),
 * by calling the pure view-model functions. Used for the full page and for the stream's full-state fragment.
 */
import { maintenanceBadge, maintenanceOverview, maintenancePanel, type MaintenancePanel } from './maintenance-view.js';
import type { Envelope } from '../../protocol/envelope.js';
import type { FleetState, NodeRecord } from '../fleet/fleet-state.js';
import { nodeStatus, type NodeStatus, type StatusPolicy } from '../fleet/node-status.js';
import type { EventBus } from '../http/event-bus.js';
import type { Orchestrator } from '../ops/orchestrator.js';
import { fleetSnapshot, fleetSnapshotInTurns, type FleetSnapshot } from './fleet-snapshot.js';
import { nextTurn } from '../../lib/next-turn.js';
import { centerKeyPanel, nodeCenterKeys } from './center-key-panel.js';
import {
  DEFAULT_VIEW,
  attentionSummary,
  feedItems,
  findingsBySeverity,
  missionBar,
  nodeDetail,
  nodePage,
  pendingEnrollments,
  recentCommands,
  type DescribeContext,
  type LedgerRootView,
  type ListFilter,
  type ListView,
  type NodeDetailView,
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
  /** The current center key: the overview shows it with its recent rotations. */
  centerKey?: { keyId: string } | undefined;
}

export interface PanelContext {
  /** The list's filter, and its order and page (defaults when left out). */
  filter: ListFilter & Partial<Pick<ListView, 'sort' | 'page' | 'size'>>;
  selected?: string | undefined;
  /** Older history from the event log, so the feed and the timeline reach past the bus's short window. */
  history?: ConsoleHistory | undefined;
}

/** Envelopes read from the event log (store-backed) when a page or stream starts, in any order. */
export interface ConsoleHistory {
  feed: readonly Envelope[];
  node: readonly Envelope[];
  /** Where the node's older history continues when its read stopped short of a full page (the log's `next`). */
  nodeOlder?: number | undefined;
}

export const FEED_LIMIT = 50;
export const TIMELINE_LIMIT = 40;

export function viewOf(ctx: Pick<PanelContext, 'filter'>): ListView {
  return { ...DEFAULT_VIEW, ...ctx.filter };
}

/** `a` and `b` as one list in seq order, each seq once (the bus's window and a page read from the log overlap). */
export function mergeEnvelopes(a: readonly Envelope[], b: readonly Envelope[]): Envelope[] {
  if (!b.length) return [...a];
  const bySeq = new Map<number, Envelope>();
  for (const e of a) bySeq.set(e.seq, e);
  for (const e of b) bySeq.set(e.seq, e);
  return [...bySeq.values()].sort((x, y) => x.seq - y.seq);
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
export function detailOf(
  src: ConsoleSource,
  node: NodeRecord,
  status: NodeStatus,
  nowMs: number,
  recent: readonly Envelope[],
  olderFallback?: number,
): NodeDetailView & { older: number | undefined; centerKeys: ReturnType<typeof nodeCenterKeys>; maintenance: MaintenancePanel } {
  const d = nodeDetail(node, status, {
    nowMs,
    policy: src.statusPolicy,
    envelopes: nodeEnvelopes(recent, node.node_id),
    schedule: src.orchestrator?.view({ nodeId: node.node_id })[0],
    describe: describeContextOf(src),
    outage: src.state.outages.get(node.node_id),
  });
  // Older history pages from the oldest event the timeline shows, when it is full.
  const events = d.timeline.filter((t) => t.type === 'event');
  const oldest = events.length ? (events[events.length - 1] as { seq: number }).seq : undefined;
  const centerKeys = src.centerKey ? nodeCenterKeys(node, src.centerKey.keyId) : undefined;
  return { ...d, centerKeys, maintenance: maintenancePanel(src.state, node, nowMs), older: d.timeline.length >= TIMELINE_LIMIT && oldest !== undefined ? oldest : olderFallback !== undefined && (oldest === undefined || olderFallback <= oldest) ? olderFallback : undefined };
}

export function buildPanels(src: ConsoleSource, ctx: PanelContext, nowMs = src.now().getTime(), snap: FleetSnapshot = fleetSnapshot(src, nowMs)) {
  const recent = recentEnvelopes(src);
  const statuses = snap.statuses;
  const view = viewOf(ctx);
  const sel = ctx.selected ? src.state.nodes.get(ctx.selected) : undefined;
  const feedFrom = mergeEnvelopes(recent, ctx.history?.feed ?? []);
  const feed = feedItems(feedFrom, view, FEED_LIMIT, describeContextOf(src));
  const attention = attentionSummary(src.state, statuses, { nowMs, policy: src.statusPolicy, filter: view });
  const bar = missionBar(statuses, { seq: src.state.lastSeq, nowMs, startedAtMs: src.startedAt.getTime(), ledger: ledgerRootOf(src) });
  const list = nodePage(snap.sorted(view.sort), statuses, view, ctx.selected, (n) => maintenanceBadge(src.state, n, nowMs));
  return {
    statuses,
    bar,
    list,
    rows: list.rows,
    pending: pendingEnrollments(src.state),
    attention,
    findings: findingsBySeverity(src.state, view),
    feed,
    /** The oldest seq shown when the feed is full (the "older" link pages from it). */
    feedOlder: feed.length === FEED_LIMIT ? feed[feed.length - 1]!.seq : undefined,
    // A node enrolled after the snapshot (buildPanelsInTurns yields) has no status in it yet.
    detail: sel ? detailOf(src, sel, statuses.get(sel.node_id) ?? nodeStatus(sel, nowMs, src.statusPolicy), nowMs, mergeEnvelopes(recent, ctx.history?.node ?? []), ctx.history?.nodeOlder) : undefined,
    overview: sel ? undefined : overviewOf(src, bar, attention, view),
  };
}

/**
 * `buildPanels` for a page render, in several turns of the event loop: the fleet snapshot's status pass and sort
 * (fleetSnapshotInTurns), then the panels. A first page at 10,000 nodes held the event loop ≈ 20 ms warm and ≈ 60 ms
 * cold in one turn, and every heartbeat that arrived meanwhile waited for it (docs/BENCHMARKS.md, fleet).
 */
export async function buildPanelsInTurns(src: ConsoleSource, ctx: PanelContext, nowMs = src.now().getTime(), yieldTurn: () => Promise<void> = nextTurn) {
  const snap = await fleetSnapshotInTurns(src, nowMs, viewOf(ctx).sort, yieldTurn);
  await yieldTurn();
  return buildPanels(src, ctx, nowMs, snap);
}

/** What the centre panel shows with no node selected: the fleet's counts, what needs attention, the latest commands, the ledger. */
export function overviewOf(src: ConsoleSource, bar: ReturnType<typeof missionBar>, attention: ReturnType<typeof attentionSummary>, view: ListView) {
  return {
    bar,
    attention: { ...attention, items: attention.items.slice(0, 6) },
    commands: recentCommands(src.state, view, 8),
    maintenance: maintenanceOverview(src.state, src.now().getTime()),
    centerKey: src.centerKey ? centerKeyPanel(src.state, src.centerKey.keyId, src.now().getTime()) : undefined,
  };
}


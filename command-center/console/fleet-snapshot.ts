/**
 * The fleet's statuses at one moment, and the node list's orders over them, shared by every console client. At
 * 10,000 nodes a status pass and a sort cost milliseconds; done once per client per second they would dominate a
 * console's CPU, so live streams accept a snapshot up to `maxAgeMs` old (the KPIs and page membership are coalesced
 * to that cadence anyway) while a page render asks for an exact one. Orders are computed on first use.
 */
import type { FleetState, NodeRecord } from '../fleet/fleet-state.js';
import { nodeStatus, type StatusPolicy } from '../fleet/node-status.js';
import { computeStatuses, sortNodes, type SortKey, type StatusMap } from './view-model.js';

export interface FleetSnapshot {
  atMs: number;
  seq: number;
  statuses: StatusMap;
  /** Every node in the order of `sort`, computed once per snapshot. */
  sorted(sort: SortKey): readonly NodeRecord[];
  /** A value derived from this snapshot, computed once for every client that asks with the same key. */
  memo<T>(key: string, make: () => T): T;
}

interface Entry {
  snap: FleetSnapshot;
  policy: StatusPolicy;
}

const cache = new WeakMap<FleetState, Entry>();

/** The shared snapshot, if it is of this moment and seq or at most `maxAgeMs` old. */
function cached(src: { state: FleetState; statusPolicy: StatusPolicy }, nowMs: number, maxAgeMs: number): FleetSnapshot | undefined {
  const hit = cache.get(src.state);
  if (!hit || hit.policy !== src.statusPolicy) return undefined;
  const s = hit.snap;
  const exact = s.seq === src.state.lastSeq && s.atMs === nowMs;
  return exact || (nowMs >= s.atMs && nowMs - s.atMs < maxAgeMs) ? s : undefined;
}

export function fleetSnapshot(src: { state: FleetState; statusPolicy: StatusPolicy }, nowMs: number, maxAgeMs = 0): FleetSnapshot {
  const hit = cached(src, nowMs, maxAgeMs);
  if (hit) return hit;
  const snap = snapshotOf(src, nowMs, src.state.lastSeq, computeStatuses(src.state, nowMs, src.statusPolicy));
  cache.set(src.state, { snap, policy: src.statusPolicy });
  return snap;
}

/** Nodes whose status one turn of `fleetSnapshotInTurns` computes. */
export const STATUS_SLICE = 2000;

/**
 * A snapshot for a page render that gives the event loop turns while it is computed: the status pass goes
 * `STATUS_SLICE` nodes per turn, then, in one last turn, the statuses of nodes enrolled meanwhile and the order of
 * `sort`. At 10,000 nodes the pass and the sort were most of a first page's ≈ 20 ms (≈ 60 ms cold) in one turn,
 * which every heartbeat arriving meanwhile waited for. Its statuses are those of a moment a few turns wide, not of
 * one seq: a page is a view of a moment, and its live stream, seeing that entries were committed since `seq` (the
 * seq when it started), begins with full state. Not shared with other clients (live streams use `fleetSnapshot`).
 */
export async function fleetSnapshotInTurns(src: { state: FleetState; statusPolicy: StatusPolicy }, nowMs: number, sort: SortKey, yieldTurn: () => Promise<void>): Promise<FleetSnapshot> {
  const seq = src.state.lastSeq;
  const nodes = [...src.state.nodes.values()];
  const statuses: StatusMap = new Map();
  for (let i = 0; i < nodes.length; i += STATUS_SLICE) {
    if (i > 0) await yieldTurn();
    for (let j = i; j < Math.min(nodes.length, i + STATUS_SLICE); j++) statuses.set(nodes[j]!.node_id, nodeStatus(nodes[j]!, nowMs, src.statusPolicy));
  }
  await yieldTurn();
  // Nodes are never removed from the fleet state; ones enrolled while this yielded are added in this turn, in which
  // the order is computed too, so every node it lists has a status.
  if (src.state.nodes.size !== statuses.size) {
    for (const n of src.state.nodes.values()) if (!statuses.has(n.node_id)) statuses.set(n.node_id, nodeStatus(n, nowMs, src.statusPolicy));
  }
  const snap = snapshotOf(src, nowMs, seq, statuses);
  snap.sorted(sort);
  return snap;
}

const making = new WeakMap<FleetState, Promise<FleetSnapshot>>();

/**
 * The shared snapshot for a live stream's first full state: the current one if it is at most `maxAgeMs` old, else
 * one made in turns like a page render's, which is then shared. Streams that (re)connect together, as every console
 * does after a restart, wait for the same one: at 10,000 nodes an exact snapshot per connect was a 25-30 ms turn
 * each, in which every heartbeat waited.
 */
export function sharedFleetSnapshotInTurns(
  src: { state: FleetState; statusPolicy: StatusPolicy },
  nowMs: number,
  maxAgeMs: number,
  sort: SortKey,
  yieldTurn: () => Promise<void>,
): Promise<FleetSnapshot> {
  const hit = cached(src, nowMs, maxAgeMs);
  if (hit) return Promise.resolve(hit);
  let pending = making.get(src.state);
  if (!pending) {
    const policy = src.statusPolicy;
    pending = fleetSnapshotInTurns(src, nowMs, sort, yieldTurn).then(
      (snap) => {
        making.delete(src.state);
        // Shared unless a newer one was made meanwhile (live streams' ticks make exact ones).
        const cur = cache.get(src.state);
        if (!cur || cur.snap.atMs <= snap.atMs) cache.set(src.state, { snap, policy });
        return snap;
      },
      (err: unknown) => {
        making.delete(src.state);
        throw err;
      },
    );
    making.set(src.state, pending);
  }
  return pending;
}

function snapshotOf(src: { state: FleetState }, nowMs: number, seq: number, statuses: StatusMap): FleetSnapshot {
  const orders = new Map<SortKey, NodeRecord[]>();
  const memos = new Map<string, unknown>();
  return {
    atMs: nowMs,
    seq,
    statuses,
    sorted(sort) {
      let o = orders.get(sort);
      if (!o) orders.set(sort, (o = sortNodes(src.state, statuses, sort)));
      return o;
    },
    memo<T>(key: string, make: () => T): T {
      if (!memos.has(key)) memos.set(key, make());
      return memos.get(key) as T;
    },
  };
}

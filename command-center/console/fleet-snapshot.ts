/**
 * The fleet's statuses at one moment, and the node list's orders over them, shared by every console client. At
 * 10,000 nodes a status pass and a sort cost milliseconds; done once per client per second they would dominate a
 * console's CPU, so live streams accept a snapshot up to `maxAgeMs` old (the KPIs and page membership are coalesced
 * to that cadence anyway) while a page render asks for an exact one. Orders are computed on first use.
 */
import type { FleetState, NodeRecord } from '../fleet/fleet-state.js';
import type { StatusPolicy } from '../fleet/node-status.js';
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

export function fleetSnapshot(src: { state: FleetState; statusPolicy: StatusPolicy }, nowMs: number, maxAgeMs = 0): FleetSnapshot {
  const hit = cache.get(src.state);
  if (hit && hit.policy === src.statusPolicy) {
    const s = hit.snap;
    const exact = s.seq === src.state.lastSeq && s.atMs === nowMs;
    if (exact || (nowMs >= s.atMs && nowMs - s.atMs < maxAgeMs)) return s;
  }
  const statuses = computeStatuses(src.state, nowMs, src.statusPolicy);
  const orders = new Map<SortKey, NodeRecord[]>();
  const memos = new Map<string, unknown>();
  const snap: FleetSnapshot = {
    atMs: nowMs,
    seq: src.state.lastSeq,
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
  cache.set(src.state, { snap, policy: src.statusPolicy });
  return snap;
}

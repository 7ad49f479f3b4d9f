/**
 * What a state snapshot holds: everything replay builds in memory (the fleet state with its join tokens, API
 * tokens, commands, incidents, attention and heartbeat histories; the de-duplication window; the SSE resume ring;
 * the event-log windows), serialised with v8's structured serialiser in one call, so objects shared between them
 * (an envelope in both the SSE ring and an event window, a heartbeat body in a node record) stay shared.
 *
 * The ledgers' id index and leaf seqs are in it too, with their size and root; their leaf hashes are in their leaf
 * cache files, which the ledgers accept at load only when they give that root and the signed head's (ledger.ts).
 */
import { deserialize, serialize } from 'node:v8';
import type { FleetState, NodeRecord } from '../fleet/fleet-state.js';
import { HeartbeatHistory } from '../fleet/heartbeat-history.js';
import type { RecentIds } from '../store/pipeline.js';
import type { EventBus } from '../http/event-bus.js';
import type { EventLog, WindowContents } from '../store/event-log.js';
import type { Envelope } from '../../protocol/envelope.js';
import type { Ledger, LedgerSnapshot } from '../ledger/ledger.js';

export interface SnapshotParts {
  state: FleetState;
  recentIds: RecentIds;
  bus: EventBus;
  eventLog: EventLog;
  /** The ledgers' trees (their leaf hashes stay in the leaf cache files): start-up then hashes only the tail. */
  ledgers: { scans: Ledger; commands: Ledger };
}

export type LedgerStates = { scans: LedgerSnapshot; commands: LedgerSnapshot };

interface Payload {
  ledgers: LedgerStates;
  /**
   * The node records without their histories, as JSON: they came from JSON bodies, and V8 reads JSON back several
   * times faster than its structured serialisation of the same objects. Histories are one packed typed array.
   */
  nodesJson: string;
  /** The packed histories' ring positions; their samples are the raw block before this part (see captureState). */
  histories: { floats: number; start: Uint32Array; count: Uint32Array };
  fleet: Omit<FleetState, 'historySize' | 'nodes'>;
  recentIds: ReturnType<RecentIds['exportState']>;
  bus: { envelopes: Envelope[]; droppedUpTo: number };
  eventLog: Record<string, WindowContents>;
}

/**
 * The payload, synchronously: this is the pause a snapshot costs the event loop (measured by the snapshotter). Three
 * parts: the byte length of the history block (8 bytes, little-endian), the history block (all nodes' samples, raw
 * float64: it is most of the bytes, and structured serialisation would copy it once more), then the rest.
 */
export function captureState(p: SnapshotParts): Buffer[] {
  const { historySize, nodes, ...fleet } = p.state;
  const records = [...nodes.values()];
  const histories = HeartbeatHistory.pack(records.map((n) => n.history), historySize);
  const nodesJson = JSON.stringify(records.map(({ history: _h, ...n }) => n));
  const ledgers = { scans: p.ledgers.scans.exportState(), commands: p.ledgers.commands.exportState() };
  const block = Buffer.from(histories.data.buffer, histories.data.byteOffset, histories.data.byteLength);
  const length = Buffer.alloc(8);
  length.writeBigUInt64LE(BigInt(block.length));
  const payload: Payload = { ledgers, nodesJson, histories: { floats: histories.data.length, start: histories.start, count: histories.count }, fleet, recentIds: p.recentIds.exportState(), bus: p.bus.exportRing(), eventLog: p.eventLog.exportWindows() };
  return [length, block, serialize(payload)];
}

/**
 * Reads a payload back and checks its shape, without touching the live parts; `apply` then installs it. Throws on
 * a payload it cannot use (the caller replays in full instead), so a bad snapshot never leaves half a state.
 */
export function prepareRestore(payload: Buffer, p: SnapshotParts): { seq: number; ledgers: LedgerStates; apply(): void } {
  if (payload.length < 8) throw new Error('snapshot: malformed payload');
  const blockBytes = Number(payload.readBigUInt64LE(0));
  if (blockBytes % 8 !== 0 || 8 + blockBytes > payload.length) throw new Error('snapshot: malformed history block');
  const data = deserialize(payload.subarray(8 + blockBytes)) as Payload;
  const f = data?.fleet;
  if (!f || typeof data.nodesJson !== 'string' || !(data.histories?.start instanceof Uint32Array) || data.histories.floats * 8 !== blockBytes || !(f.joinTokens instanceof Map) || !(f.joinTokenByHash instanceof Map) || !(f.attention instanceof Map)) throw new Error('snapshot: malformed fleet state');
  if (!(f.commands?.byId instanceof Map) || !(f.incidents?.open instanceof Map) || !Number.isSafeInteger(f.lastSeq)) throw new Error('snapshot: malformed fleet state');
  // Copied out of the file's buffer (one memcpy) so that buffer can go once start-up is done.
  const samples = new Float64Array(data.histories.floats);
  new Uint8Array(samples.buffer).set(payload.subarray(8, 8 + blockBytes));
  const block = { data: samples, start: data.histories.start, count: data.histories.count };
  const records = JSON.parse(data.nodesJson) as NodeRecord[];
  if (!Array.isArray(records) || records.length !== data.histories.start.length) throw new Error('snapshot: malformed node records');
  const nodes = new Map<string, NodeRecord>();
  records.forEach((node, i) => {
    node.history = HeartbeatHistory.unpack(block, i, p.state.historySize);
    nodes.set(node.node_id, node);
  });
  if (!data.bus || !Array.isArray(data.bus.envelopes) || !data.eventLog || typeof data.eventLog !== 'object') throw new Error('snapshot: malformed rings');
  const probe = data.recentIds;
  if (!probe || !(probe.seqs instanceof Float64Array) || !Array.isArray(probe.order)) throw new Error('snapshot: malformed recent ids');
  for (const l of [data.ledgers?.scans, data.ledgers?.commands]) {
    if (!l || !Number.isSafeInteger(l.size) || typeof l.root !== 'string' || !(l.ids instanceof Map) || !(l.seqs instanceof Float64Array)) throw new Error('snapshot: malformed ledger state');
  }
  return {
    seq: f.lastSeq,
    ledgers: data.ledgers,
    apply() {
      if (!p.recentIds.importState(data.recentIds)) throw new Error('snapshot: recent-id window of another size');
      // In place: the store's summariser and the services hold this object.
      delete p.state.apiTokens;
      delete p.state.maintenance;
      Object.assign(p.state, f, { nodes });
      p.bus.importRing(data.bus);
      p.eventLog.importWindows(data.eventLog);
    },
  };
}

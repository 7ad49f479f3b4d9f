/**
 * What a state snapshot holds: everything replay builds in memory (the fleet state with its join tokens, API
 * tokens, commands, incidents, attention and heartbeat histories; the de-duplication window; the SSE resume ring;
 * the event-log windows), in parts (see captureState's layout): packed typed arrays, JSON where V8 reads it back
 * faster, v8's structured serialiser for the rest (the SSE ring and the event windows in one call, so an envelope in
 * both stays one object). Parts nobody may need soon stay text after a load: a command record's signed command and
 * receipt (deferred-json.ts) and each ledger's id index (ledger/id-index.ts).
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
import type { CommandRecord, CommandState } from '../commands/command-store.js';
import { bufferBytes, type SnapshotBytes } from './snapshot-format.js';
import { deferredJsonText, withDeferredJson } from './deferred-json.js';
import { idIndexText } from '../ledger/id-index.js';
import type { AttentionRecord } from '../ops/attention.js';
import type { NodeOutage } from '../fleet/outages.js';

export interface SnapshotParts {
  state: FleetState;
  recentIds: RecentIds;
  bus: EventBus;
  eventLog: EventLog;
  /** The ledgers' trees (their leaf hashes stay in the leaf cache files): start-up then hashes only the tail. */
  ledgers: { scans: Ledger; commands: Ledger };
}

export type LedgerStates = { scans: LedgerSnapshot; commands: LedgerSnapshot };

/** What the restore puts together (the parts below, read back). */
interface Payload {
  ledgers: LedgerStates;
  fleet: Omit<FleetState, 'historySize' | 'nodes'>;
  recentIds: ReturnType<RecentIds['exportState']>;
  bus: { envelopes: Envelope[]; droppedUpTo: number };
  eventLog: Record<string, WindowContents>;
}

/** Serialised in the capture's first turn: what is small or changes in place in ways a shallow copy would not fix. */
interface Early {
  /** Without their id indexes (each its own JSON part, written in a later slice). */
  ledgers: { scans: Omit<LedgerSnapshot, 'ids'>; commands: Omit<LedgerSnapshot, 'ids'> };
  fleet: Omit<FleetState, 'historySize' | 'nodes' | 'commands' | 'attention' | 'outages'>;
  /** The command state's other parts (byId, open and byIdempotencyKey are in the later parts). */
  commands: Record<string, unknown>;
}

/** Serialised after the command records, in two calls: copies taken in the first turn. */
interface Late {
  open: CommandState['open'];
  byIdempotencyKey: CommandState['byIdempotencyKey'];
  recentIds: ReturnType<RecentIds['exportState']>;
}
/** One call, so that an envelope in both the SSE ring and an event window stays one object. */
interface Rings {
  bus: { envelopes: Envelope[]; droppedUpTo: number };
  eventLog: Record<string, WindowContents>;
}

/** The attention and outage maps as entry lists, one JSON part (needed at once by the sweeps: parsed at load). */
interface Maps {
  attention: Array<[string, AttentionRecord]>;
  outages: Array<[string, NodeOutage]>;
}

/** A command record's fields kept as JSON text in the snapshot and parsed on first read (deferred-json.ts). */
const DEFERRED_COMMAND_FIELDS = ['signed', 'receipt'] as const;

/** Called between the slices of a capture; resolves when the event loop may give the capture another turn. */
export type YieldToLoop = () => Promise<void>;

/**
 * Histories copied per slice (≈ 5.8 MB of samples at 120 per history), node records stringified and command records
 * serialised per slice. A test shrinks them, and sets `between` to commit entries at every slice boundary.
 */
export const captureSlices: { histories: number; nodes: number; commands: number; between?: () => Promise<void> } = { histories: 1000, nodes: 100, commands: 250 };

/**
 * The payload, as of the moment it is called (the seq the snapshotter stamps on it): what changes is fixed in the
 * first, synchronous turn, cheaply, and the large parts are then encoded in slices, between which the center goes on
 * serving and committing. Layout (all lengths u64 little-endian):
 *
 *   [history block bytes][history block: every node's samples, oldest first, one node after the other, raw float64]
 *   [node count][samples per node: u32 × count]
 *   [node chunk count]([chunk bytes][a JSON array of up to NODE_CHUNK node records without their histories])…
 *   (V8 reads JSON back several times faster than its structured serialisation of the same objects; in chunks, each
 *   string is small enough for the young generation and dies there, where one 15 MiB string outlived the load)
 *   [early bytes][Early: ledgers without their id indexes, the fleet maps but commands, attention and outages; v8
 *   structured serialisation]
 *   [chunk count]([chunk bytes][a JSON array of command records, each one's `signed` and `receipt` replaced by the
 *   length of its JSON text][texts bytes][those texts, one after the other]: a load keeps each text and parses it
 *   when the field is first read, deferred-json.ts)…
 *   [late bytes][Late: open commands, idempotency keys, recent ids; v8]
 *   [rings bytes][Rings: SSE ring and event windows, in one call, so an envelope in both stays one object; v8]
 *   [maps bytes][Maps: the attention and outage maps as entry lists; JSON]
 *   [scan ids bytes][the scan ledger's id index; JSON, kept as text at load (ledger/id-index.ts)]
 *   [command ids bytes][the command ledger's id index; likewise]
 *
 * Consistency: the histories are copied on write (HistoryCapture: one pushed to before its turn is copied first).
 * Node records and command records are copied shallowly in the first turn: the reducers replace their fields
 * rather than change them in place, apart from arrays, which are copied too (`open_incidents` grows in place); a
 * reducer that changed a nested object of either in place would have to copy it here. The open-command sets, the
 * idempotency map, the attention map (its records are replaced), the outages (with their `returned`, which changes
 * in place), the recent-id window's slot arrays (its key bytes never change once written: RecentIds.freeze)
 * and the SSE and event rings are copied in the first turn (their envelopes do not change), and the rest is
 * serialised there. The ledgers' id maps only grow (an id keeps its first leaf), so their entries below each
 * ledger's size at the first turn, written in a later slice, are the index as of the capture. `state-snapshot.test.ts` commits entries at every slice boundary
 * and checks snapshot + tail = full replay.
 */
/**
 * Node records per JSON chunk: ≈ 1.5 KB each, so a chunk's text stays under V8's large-object size (128 KiB), is
 * allocated young and is collected young once parsed.
 */
const NODE_CHUNK = 50;

export async function captureState(p: SnapshotParts, yieldToLoop?: YieldToLoop): Promise<Buffer[]> {
  const { historySize, nodes, commands, attention, outages, ...fleet } = p.state;
  const records = [...nodes.values()];
  const histories = HeartbeatHistory.capture(records.map((n) => n.history), historySize);
  let copies: Array<Record<string, unknown>>;
  let commandCopies: Array<Record<string, unknown>>;
  let early: Buffer;
  let late: Omit<Late, 'recentIds'>;
  let recentIds: () => Late['recentIds'];
  let rings: Rings;
  let maps: Maps;
  let ledgerIds: Array<{ ids: Map<string, number> | string; size: number }>;
  try {
    copies = records.map(copyRecord);
    const { byId, open, byIdempotencyKey, ...otherCommandState } = commands;
    commandCopies = [...byId.values()].map(copyCommand);
    const { ids: scanIds, ...scans } = p.ledgers.scans.exportState();
    const { ids: commandIds, ...commandLedger } = p.ledgers.commands.exportState();
    // The id maps only grow (an id keeps its first leaf): the entries below each ledger's size now are its state.
    ledgerIds = [
      { ids: scanIds, size: scans.size },
      { ids: commandIds, size: commandLedger.size },
    ];
    early = serialize({ ledgers: { scans, commands: commandLedger }, fleet, commands: otherCommandState } satisfies Early);
    // Attention records are replaced, never changed; an outage's `returned` is set and its report replaced in place.
    maps = {
      attention: [...attention],
      outages: [...outages].map(([node, o]) => [node, o.returned ? { ...o, returned: { ...o.returned } } : { ...o }]),
    };
    // Its per-slot arrays copied now; its compact export (the keys' bytes, which never change) built in a slice.
    recentIds = p.recentIds.freeze({ index: true });
    late = {
      open: new Map([...open].map(([node, ids]) => [node, new Set(ids)])),
      byIdempotencyKey: new Map(byIdempotencyKey),
    };
    rings = { bus: p.bus.exportRing(), eventLog: p.eventLog.exportWindows() };
  } catch (err) {
    histories.finish(); // lets go of the histories
    throw err;
  }
  const slice = async () => {
    await yieldToLoop?.();
    await captureSlices.between?.();
  };
  while (!histories.step(captureSlices.histories)) await slice();
  const block = histories.finish();
  const u64 = (n: number) => {
    const b = Buffer.alloc(8);
    b.writeBigUInt64LE(BigInt(n));
    return b;
  };
  const nodeChunks: Buffer[] = [];
  for (let i = 0, n = captureSlices.nodes; i < copies.length; i += n) {
    await slice();
    for (let j = i; j < Math.min(copies.length, i + n); j += NODE_CHUNK) {
      const chunk = Buffer.from(JSON.stringify(copies.slice(j, Math.min(copies.length, i + n, j + NODE_CHUNK))), 'utf8');
      nodeChunks.push(u64(chunk.length), chunk);
    }
  }
  const chunks: Buffer[] = [];
  for (let i = 0, n = captureSlices.commands; i < commandCopies.length; i += n) {
    await slice();
    const part = commandCopies.slice(i, i + n);
    // Each text goes into the chunk's text block, its length (in UTF-16 units) in the record: inside the JSON it
    // would be an escaped string, which JSON.parse reads ≈ 2× slower.
    // A value not held as text yet costs one JSON.stringify (≈ 3–4 µs for a signed command; stringifying a slice's
    // values in one call and splitting the result was measured slower).
    const texts: string[] = [];
    for (const c of part) {
      for (const k of DEFERRED_COMMAND_FIELDS) {
        if (c[k] === undefined) continue;
        const text = typeof c[k] === 'string' ? (c[k] as string) : JSON.stringify(c[k]);
        texts.push(text);
        c[k] = text.length;
      }
    }
    const chunk = Buffer.from(JSON.stringify(part), 'utf8');
    const block = Buffer.from(texts.join(''), 'utf8');
    chunks.push(u64(chunk.length), chunk, u64(block.length), block);
  }
  await slice();
  const lateState: Late = { ...late, recentIds: recentIds() };
  await slice();
  const lateBytes = serialize(lateState);
  await slice();
  const ringBytes = serialize(rings);
  await slice();
  // In three turns: attention, outages, then the one JSON text (≈ 10,000 small records each at 10,000 nodes).
  const attentionJson = JSON.stringify(maps.attention);
  await slice();
  const outagesJson = JSON.stringify(maps.outages);
  await slice();
  const mapBytes = Buffer.from(`{"attention":${attentionJson},"outages":${outagesJson}}`, 'utf8');
  const idParts: Buffer[] = [];
  for (const { ids, size } of ledgerIds) {
    await slice();
    const text = Buffer.from(typeof ids === 'string' ? ids : await idIndexText(ids, size, slice), 'utf8');
    idParts.push(u64(text.length), text);
  }
  const bytes = (a: Float64Array | Uint32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);
  return [
    u64(block.chunks.reduce((n, c) => n + c.byteLength, 0)), ...block.chunks.map(bytes), u64(records.length), bytes(block.count),
    u64(nodeChunks.length / 2), ...nodeChunks,
    u64(early.length), early,
    u64(chunks.length / 4), ...chunks,
    u64(lateBytes.length), lateBytes,
    u64(ringBytes.length), ringBytes,
    u64(mapBytes.length), mapBytes,
    ...idParts,
  ];
}

/** A record as it is now (a node's without its history): a shallow copy, with its arrays copied (they may grow in place). */
function copyRecord(node: object): Record<string, unknown> {
  // for-in with plain assignment: several times faster than a rest spread plus Object.entries at 10,000 records.
  const copy: Record<string, unknown> = {};
  for (const k in node) {
    if (k === 'history') continue;
    const v = (node as Record<string, unknown>)[k];
    copy[k] = Array.isArray(v) ? v.slice() : v;
  }
  return copy;
}

/**
 * A command record as it is now: a shallow copy (see copyRecord), whose signed command and receipt are their JSON
 * text when they were loaded from a snapshot and never read since (not parsed for the capture), or their objects
 * (replaced, never changed in place), stringified in a later slice.
 */
function copyCommand(rec: CommandRecord): Record<string, unknown> {
  const copy: Record<string, unknown> = {};
  for (const k in rec) {
    if (k === 'signed' || k === 'receipt') {
      copy[k] = deferredJsonText(rec, k) ?? rec[k];
      continue;
    }
    const v = (rec as unknown as Record<string, unknown>)[k];
    copy[k] = Array.isArray(v) ? v.slice() : v;
  }
  return copy;
}

/**
 * Reads a payload's parts in order (see captureState's layout), each as its own buffer when the source is a file, so
 * each can be decoded and dropped before the next is read. Throws on lengths that do not add up.
 */
class PayloadParts {
  private at: number;
  constructor(
    private readonly src: SnapshotBytes,
    start: number,
  ) {
    this.at = start;
  }
  private claim(n: number, what: string): number {
    if (!Number.isSafeInteger(n) || n < 0 || this.at + n > this.src.size) throw new Error(`snapshot: malformed ${what}`);
    const at = this.at;
    this.at += n;
    return at;
  }
  /** A part's length (u64 little-endian). */
  length(what: string): number {
    return Number(this.src.read(this.claim(8, what), 8).readBigUInt64LE(0));
  }
  bytes(n: number, what: string): Buffer {
    return this.src.read(this.claim(n, what), n);
  }
  /** `n` bytes straight into a typed array of their own (not a view on a larger buffer). */
  into<T extends Float64Array | Uint32Array>(make: (count: number) => T, n: number, width: number, what: string): T {
    if (n % width !== 0) throw new Error(`snapshot: malformed ${what}`);
    const at = this.claim(n, what);
    const a = make(n / width);
    this.src.readInto(at, new Uint8Array(a.buffer, a.byteOffset, a.byteLength));
    return a;
  }
  end(): void {
    if (this.at !== this.src.size) throw new Error('snapshot: malformed payload (bytes after the last part)');
  }
}

/** A payload cut into its parts (see captureState); throws on one whose lengths do not add up. */
export function splitPayload(payload: Buffer): { block: Float64Array; count: Uint32Array; nodeChunks: string[]; early: Buffer; commandChunks: Buffer[]; late: Buffer; rings: Buffer; maps: Buffer; ledgerIds: { scans: string; commands: string } } {
  const r = new PayloadParts(bufferBytes(payload), 0);
  const block = r.into((n) => new Float64Array(n), r.length('history block'), 8, 'history block');
  const nodes = r.length('node count');
  const count = r.into((n) => new Uint32Array(n), nodes * 4, 4, 'history counts');
  const nodeChunks: string[] = [];
  for (let i = 0, n = r.length('node chunks'); i < n; i++) nodeChunks.push(r.bytes(r.length('node chunk'), 'node chunk').toString('utf8'));
  const early = r.bytes(r.length('early part'), 'early part');
  const commandChunks: Buffer[] = [];
  for (let i = 0, n = r.length('command chunks'); i < n; i++) commandChunks.push(r.bytes(r.length('command chunk'), 'command chunk'), r.bytes(r.length('command texts'), 'command texts'));
  const late = r.bytes(r.length('late part'), 'late part');
  const rings = r.bytes(r.length('rings'), 'rings');
  const maps = r.bytes(r.length('maps'), 'maps');
  const scans = r.bytes(r.length('scan ids'), 'scan ids').toString('utf8');
  const commands = r.bytes(r.length('command ids'), 'command ids').toString('utf8');
  r.end();
  return { block, count, nodeChunks, early, commandChunks, late, rings, maps, ledgerIds: { scans, commands } };
}

/**
 * Reads a payload back and checks its shape, without touching the live parts; `apply` then installs it. Throws on
 * a payload it cannot use (the caller replays in full instead), so a bad snapshot never leaves half a state.
 *
 * `payload` is a buffer, or where it starts in a source read by position (the snapshot file, snapshot-file.ts):
 * then each part is read when it is decoded, in file order, and its buffer is garbage before the next is read, so
 * the load never holds more than the largest part besides what it builds (the history block is read straight
 * into its Float64Array). Nothing read here is installed before the whole file's checksum was checked
 * (checkSnapshot), so a part is only ever decoded from verified bytes.
 */
export function prepareRestore(payload: Buffer | { src: SnapshotBytes; start: number }, p: SnapshotParts): { seq: number; ledgers: LedgerStates; apply(): void } {
  const r = Buffer.isBuffer(payload) ? new PayloadParts(bufferBytes(payload), 0) : new PayloadParts(payload.src, payload.start);
  const samples = r.into((n) => new Float64Array(n), r.length('history block'), 8, 'history block');
  const count = r.length('node count');
  const counts = r.into((n) => new Uint32Array(n), count * 4, 4, 'history counts');
  const histories = HeartbeatHistory.unpackAll({ data: samples, count: counts }, p.state.historySize);
  const nodes = new Map<string, NodeRecord>();
  for (let c = 0, chunks = r.length('node chunks'); c < chunks; c++) {
    const records = JSON.parse(r.bytes(r.length('node chunk'), 'node chunk').toString('utf8')) as NodeRecord[];
    if (!Array.isArray(records) || nodes.size + records.length > count) throw new Error('snapshot: malformed node records');
    for (const node of records) {
      node.history = histories[nodes.size]!;
      nodes.set(node.node_id, node);
    }
  }
  if (nodes.size !== count) throw new Error('snapshot: malformed node records');
  const e = deserialize(r.bytes(r.length('early part'), 'early part')) as Early;
  for (const l of [e?.ledgers?.scans, e?.ledgers?.commands]) {
    // v8.deserialize makes typed arrays views of its input: copied at once, so the part's buffer is garbage before
    // the next part is read (what is kept past the load must not hold a part's buffer either).
    if (l?.seqs instanceof Float64Array) l.seqs = l.seqs.slice();
    if (l?.tree && Array.isArray(l.tree.levels)) l.tree.levels = l.tree.levels.map((x) => (x instanceof Uint8Array ? new Uint8Array(x) : x)); // not Buffer#slice: a view
  }
  const byId = new Map<string, CommandRecord>();
  for (let i = 0, n = r.length('command chunks'); i < n; i++) {
    const recs = JSON.parse(r.bytes(r.length('command chunk'), 'command chunk').toString('utf8')) as Array<Record<string, unknown>>;
    const texts = r.bytes(r.length('command texts'), 'command texts').toString('utf8');
    if (!Array.isArray(recs)) throw new Error('snapshot: malformed command records');
    let at = 0;
    for (const rec of recs) {
      for (const k of DEFERRED_COMMAND_FIELDS) {
        const n = rec[k];
        if (n === undefined) continue;
        if (!Number.isSafeInteger(n) || (n as number) < 0 || at + (n as number) > texts.length) throw new Error('snapshot: malformed command records');
        rec[k] = texts.slice(at, (at += n as number));
      }
      const lazy = withDeferredJson(rec, DEFERRED_COMMAND_FIELDS) as unknown as CommandRecord;
      byId.set(lazy.id, lazy);
    }
    if (at !== texts.length) throw new Error('snapshot: malformed command records');
  }
  const l = deserialize(r.bytes(r.length('late part'), 'late part')) as Late;
  const ids = l?.recentIds;
  if (ids?.keys instanceof Uint8Array) ids.keys = new Uint8Array(ids.keys); // copies, as for the ledgers above
  if (ids?.seqs instanceof Float64Array) ids.seqs = ids.seqs.slice();
  if (ids?.lengths instanceof Uint32Array) ids.lengths = ids.lengths.slice();
  const rg = deserialize(r.bytes(r.length('rings'), 'rings')) as Rings;
  const m = JSON.parse(r.bytes(r.length('maps'), 'maps').toString('utf8')) as Maps;
  if (!Array.isArray(m?.attention) || !Array.isArray(m.outages)) throw new Error('snapshot: malformed fleet state');
  // Kept as text: a ledger parses it on its first id lookup or append (id-index.ts).
  const scanIds = r.bytes(r.length('scan ids'), 'scan ids').toString('utf8');
  const commandIds = r.bytes(r.length('command ids'), 'command ids').toString('utf8');
  r.end();
  const ledgers: LedgerStates | undefined = e?.ledgers?.scans && e.ledgers.commands ? { scans: { ...e.ledgers.scans, ids: scanIds }, commands: { ...e.ledgers.commands, ids: commandIds } } : undefined;
  const data: Payload | undefined = e?.fleet && ledgers && l && rg ? { ledgers, fleet: { ...e.fleet, attention: new Map(m.attention), outages: new Map(m.outages), commands: { ...e.commands, byId, open: l.open, byIdempotencyKey: l.byIdempotencyKey } as CommandState }, recentIds: l.recentIds, bus: rg.bus, eventLog: rg.eventLog } : undefined;
  const f = data?.fleet;
  if (!data || !f) throw new Error('snapshot: malformed fleet state');
  if (!f || !(f.joinTokens instanceof Map) || !(f.joinTokenByHash instanceof Map) || !(f.attention instanceof Map)) throw new Error('snapshot: malformed fleet state');
  if (!(f.commands?.byId instanceof Map) || !(f.incidents?.open instanceof Map) || !Number.isSafeInteger(f.lastSeq)) throw new Error('snapshot: malformed fleet state');
  if (!data.bus || !Array.isArray(data.bus.envelopes) || !data.eventLog || typeof data.eventLog !== 'object') throw new Error('snapshot: malformed rings');
  const probe = data.recentIds;
  if (!probe || !(probe.seqs instanceof Float64Array) || !(probe.lengths instanceof Uint32Array) || !(probe.keys instanceof Uint8Array)) throw new Error('snapshot: malformed recent ids');
  for (const l of [data.ledgers?.scans, data.ledgers?.commands]) {
    if (!l || !Number.isSafeInteger(l.size) || typeof l.root !== 'string' || typeof l.ids !== 'string' || !(l.seqs instanceof Float64Array)) throw new Error('snapshot: malformed ledger state');
  }
  return {
    seq: f.lastSeq,
    ledgers: data.ledgers,
    apply() {
      if (!p.recentIds.importState(data.recentIds)) throw new Error('snapshot: recent-id window of another size, or malformed');
      // In place: the store's summariser and the services hold this object.
      delete p.state.apiTokens;
      delete p.state.maintenance;
      Object.assign(p.state, f, { nodes });
      p.bus.importRing(data.bus);
      p.eventLog.importWindows(data.eventLog);
    },
  };
}

/**
 * Start-up from a state snapshot gives exactly the state of a full replay. A real center's history (the fleet
 * fixture: enrollments, heartbeats, scans and findings, commands with every receipt status, notes, incidents, tags,
 * join and API tokens) is cut at a seq; a center started on the cut log takes a snapshot there; a center on the
 * whole log starts from that snapshot and replays only the tail. Its state (fleet state, dedup window, SSE ring,
 * event windows, ledger roots) is compared, canonically, with the state of a full replay of the same log. Then every
 * reason to distrust a snapshot (missing, corrupt, truncated, older or newer format, other release, seq beyond the
 * log's end, another log) must fall back to a full replay, say so, and still give the same state.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cpSync, existsSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { createHash } from 'node:crypto';
import { deserialize } from 'node:v8';
import type { ComposedCenter } from '../command-center/center.js';
import type { Logger } from '../lib/logger.js';
import type { Timers } from '../lib/timers.js';
import { VERSION } from '../lib/version.js';
import { copyStore } from '../cli/store-copy.js';
import { SNAPSHOT_FILE } from '../command-center/snapshot/snapshot-file.js';
import { SNAPSHOT_VERSION, bufferBytes, checkSnapshot, decodeSnapshot, encodeSnapshot } from '../command-center/snapshot/snapshot-format.js';
import { generateFleetFixture, type FleetFixture } from './fleet-fixture.js';
import { composeTestCenter, heartbeatBody, tempDir } from './helpers.js';
import { captureSlices, prepareRestore, splitPayload } from '../command-center/snapshot/center-state.js';
import { centerStores } from './center-stores.js';
import type { Ledger } from '../command-center/ledger/ledger.js';
import { parseIdIndex } from '../command-center/ledger/id-index.js';
import { deferredJsonText } from '../command-center/snapshot/deferred-json.js';

// Background jobs never run: nothing but the history under test reaches the log.
const inert: Timers = { setInterval: () => 0, clearInterval: () => {}, setTimeout: () => 0, clearTimeout: () => {} };

/**
 * A canonical, order-preserving text of any state value: Maps, Sets, typed arrays, holes, class names, -Infinity.
 * An object reached twice is written out twice (compared by value; only a cycle is written as a reference): a
 * snapshot may hold two equal objects where replay shares one (a command record's `args` is its signed payload's
 * `args` object until the signed command, kept as JSON text, is parsed).
 */
function canon(v: unknown, path = new Set<object>()): unknown {
  if (v === undefined) return ['undef'];
  if (typeof v === 'number') return Number.isFinite(v) ? v : ['num', String(v)];
  if (v === null || typeof v !== 'object') return v;
  if (path.has(v)) return ['cycle'];
  path.add(v);
  try {
    return canonObject(v, path);
  } finally {
    path.delete(v);
  }
}

function canonObject(v: object, seen: Set<object>): unknown {
  if (v instanceof Map) return ['Map', [...v].map(([k, x]) => [canon(k, seen), canon(x, seen)])];
  if (v instanceof Set) return ['Set', [...v].map((x) => canon(x, seen))];
  if (v instanceof Float64Array) return ['F64', [...v]];
  if (Buffer.isBuffer(v)) return ['Buf', v.toString('hex')];
  if (Array.isArray(v)) return ['Arr', Array.from({ length: v.length }, (_, i) => (i in v ? canon(v[i], seen) : ['hole']))];
  const proto = Object.getPrototypeOf(v);
  return [proto?.constructor?.name ?? 'null', Object.keys(v).sort().map((k) => [k, canon((v as Record<string, unknown>)[k], seen)])];
}

const digest = (v: unknown) => createHash('sha256').update(JSON.stringify(canon(v))).digest('hex');

/** Everything replay builds, section by section (a mismatch names its section). */
function stateOf(c: ComposedCenter): Record<string, string> {
  const s = c.services;
  const { nodes, ...rest } = s.state;
  const histories = [...nodes.values()].map((n) => [n.node_id, n.history.capacity, n.history.samples()]);
  const withoutHistory = [...nodes.values()].map(({ history: _h, ...n }) => n);
  return {
    nodes: digest(withoutHistory),
    histories: digest(histories),
    fleet: digest(rest),
    recentIds: digest(c.snapshotParts.recentIds.exportState()),
    sse: digest(s.bus.exportRing()),
    eventLog: digest(s.eventLog.exportWindows()),
    ledgers: digest([s.ledgers.scans.root(), s.ledgers.commands.root(), ledgerState(s.ledgers.scans), ledgerState(s.ledgers.commands), s.ledgers.scans.latestHead()?.tree_size]),
  };
}

/** A ledger's saved state with its id index as a Map, whether the ledger holds it parsed or still as its snapshot text. */
function ledgerState(l: Ledger): unknown {
  const state = l.exportState();
  return { ...state, ids: typeof state.ids === 'string' ? parseIdIndex(state.ids) : state.ids };
}

function recordingLog(): Logger & { lines: string[] } {
  const lines: string[] = [];
  return { lines, info: (m: string) => lines.push(m), warn: (m: string) => lines.push(`WARN ${m}`), error: (m: string) => lines.push(`ERROR ${m}`) };
}

const seqOf = (line: string) => Number(/"seq":(\d+)/.exec(line)![1]);

let fx: FleetFixture;
let total = 0;
const temps: Array<{ cleanup(): void }> = [];

beforeAll(async () => {
  fx = await generateFleetFixture();
  for (const f of readdirSync(fx.logDir)) if (f.endsWith('.jsonl')) for (const l of readFileSync(join(fx.logDir, f), 'utf8').split('\n')) if (l) total = Math.max(total, seqOf(l));
}, 120_000);

afterAll(() => {
  for (const t of temps) t.cleanup();
  fx?.cleanup();
});

/** A copy of the fixture's log and state dirs, without its own snapshot; `cutAt` keeps only entries up to that seq. */
function copyFixture(cutAt?: number): string {
  const t = tempDir('vm-snap-');
  temps.push(t);
  cpSync(dirname(fx.logDir), t.dir, { recursive: true });
  rmSync(join(t.dir, 'state', SNAPSHOT_FILE), { force: true });
  if (cutAt !== undefined) {
    const logs = join(t.dir, 'logs');
    for (const f of readdirSync(logs)) {
      const p = join(logs, f);
      // The ledgers' heads sign the whole log: a cut log starts its own.
      if (!f.endsWith('.jsonl')) rmSync(p, { recursive: true, force: true });
      else writeFileSync(p, readFileSync(p, 'utf8').split('\n').filter((l) => l && seqOf(l) <= cutAt).map((l) => `${l}\n`).join(''));
    }
  }
  return t.dir;
}

describe.each(centerStores('state snapshot'))('state snapshot (%s store)', (storeName, storeOverrides) => {
  /** The center settings for a copy: JSONL in place, or its journals copied into a fresh database. */
  async function storeFor(dir: string): Promise<Record<string, unknown>> {
    const o = await storeOverrides();
    if (storeName !== 'postgres') return o;
    const logs = join(dir, 'logs');
    await copyStore({ kind: 'jsonl', dir: logs }, { kind: 'postgres', url: o.databaseUrl as string });
    for (const f of readdirSync(logs)) if (f.endsWith('.jsonl')) rmSync(join(logs, f));
    return o;
  }

  async function compose(dir: string, store: Record<string, unknown>, extra: Record<string, unknown> = {}, log = recordingLog()) {
    const c = await composeTestCenter(dir, { ...store, attentionCheckSecs: 3600, orchestratorTickSecs: 0, ...extra }, { timers: inert, log });
    return Object.assign(c, { log });
  }

  it('snapshot + tail gives exactly the state of a full replay', async () => {
    const cut = Math.floor(total / 2);
    expect(cut).toBeGreaterThan(10);

    // A center on the log as it was at `cut` takes its snapshot there.
    const early = copyFixture(cut);
    const a = await compose(early, await storeFor(early));
    expect(a.replay.lastSeq).toBe(cut);
    const taken = await a.snapshotter!.snapshot();
    expect(taken?.seq).toBe(cut);
    await a.close();
    const snap = readFileSync(join(early, 'state', SNAPSHOT_FILE));
    expect(statSync(join(early, 'state', SNAPSHOT_FILE)).mode & 0o777).toBe(0o600);

    // The whole log, started from that snapshot: only the tail is replayed.
    const whole = copyFixture();
    const wholeStore = await storeFor(whole);
    writeFileSync(join(whole, 'state', SNAPSHOT_FILE), snap, { mode: 0o600 });
    const b = await compose(whole, wholeStore);
    expect(b.snapshot).toMatchObject({ used: true, seq: cut });
    expect(b.replay.afterSeq).toBe(cut);
    expect(b.replay.envelopes).toBe(total - cut);
    expect(b.log.lines.some((l) => /replayed \d+ envelopes up to seq \d+ in \d+ ms \(after the state snapshot at seq \d+\)/.test(l))).toBe(true);
    expect(b.log.lines.filter((l) => l.startsWith('WARN'))).toEqual([]); // the ledgers took their trees from it too
    expect(b.services.ledgers.scans.size).toBeGreaterThan(0);
    const fromSnapshot = stateOf(b);
    // Retries of envelopes from before the snapshot are still recognised.
    const early1 = [...b.services.state.commands.byId.values()][0]!;
    await b.close();

    // The same log replayed in full.
    const c = await compose(whole, wholeStore, { snapshotOff: true });
    expect(c.replay.afterSeq).toBe(0);
    expect(c.replay.envelopes).toBe(total);
    const full = stateOf(c);
    expect(c.services.state.commands.byId.get(early1.id)).toEqual(early1);
    await c.close();

    expect(fromSnapshot).toEqual(full);
    // The fixture's history is really in there: every receipt status, tokens, incidents, scans.
    const statuses = new Set([...b.services.state.commands.byId.values()].map((r) => r.status));
    expect(statuses.size).toBeGreaterThanOrEqual(4);
  }, 120_000);

  it('a clean shutdown leaves a snapshot of everything: the next start replays nothing and is equal', async () => {
    const dir = copyFixture();
    const store = await storeFor(dir);
    const a = await compose(dir, store, { snapshotOff: true });
    const full = stateOf(a);
    await a.close();
    const b = await compose(dir, store);
    expect(b.snapshot.used).toBe(false); // the first start with snapshots on has none
    await b.close(); // ... and writes one on shutdown
    const c = await compose(dir, store);
    expect(c.snapshot).toMatchObject({ used: true, seq: total });
    expect(c.replay.envelopes).toBe(0);
    expect(stateOf(c)).toEqual(full);
    await c.close();
  }, 120_000);

  it('the parts a snapshot start leaves unparsed (signed commands, receipts, ledger id indexes) read back as a full replay built them, and a snapshot of them is one too', async () => {
    const cut = Math.floor((total * 4) / 5); // late enough that commands exist before it
    const early = copyFixture(cut);
    const earlyStore = await storeFor(early);
    const e = await compose(early, earlyStore);
    await e.close(); // writes the snapshot at `cut`
    const dir = copyFixture();
    const store = await storeFor(dir);
    const a = await compose(dir, store, { snapshotOff: true });
    const full = stateOf(a);
    const commands = [...a.services.state.commands.byId.values()].map((r) => ({ id: r.id, signed: r.signed, receipt: r.receipt }));
    const ids = { scans: a.services.ledgers.scans.exportState().ids as Map<string, number>, commands: a.services.ledgers.commands.exportState().ids as Map<string, number> };
    const attention = [...a.services.state.attention];
    const outages = [...a.services.state.outages];
    await a.close();
    expect(commands.filter((r) => r.signed && r.receipt).length).toBeGreaterThan(0);
    expect(ids.scans.size + ids.commands.size).toBeGreaterThan(0);

    // Started from it, and snapshotted again before anything is read: the unread texts are written back as they were.
    writeFileSync(join(dir, 'state', SNAPSHOT_FILE), readFileSync(join(early, 'state', SNAPSHOT_FILE)), { mode: 0o600 });
    const c = await compose(dir, store);
    expect(c.snapshot).toMatchObject({ used: true, seq: cut });
    const byId = c.services.state.commands.byId;
    expect([...byId.values()].filter((r) => deferredJsonText(r, 'signed') !== undefined).length).toBeGreaterThan(0);
    expect([...byId.values()].filter((r) => deferredJsonText(r, 'receipt') !== undefined).length).toBeGreaterThan(0);
    expect((await c.snapshotter!.snapshot())?.seq).toBe(total);
    expect([...c.services.state.attention]).toEqual(attention);
    expect([...c.services.state.outages]).toEqual(outages);
    // Each field read once: parsed, then a plain property with the replayed value.
    for (const r of commands) {
      const rec = byId.get(r.id)!;
      expect(rec.signed).toEqual(r.signed);
      expect(rec.receipt).toEqual(r.receipt);
      expect(deferredJsonText(rec, 'signed')).toBeUndefined();
      expect(Object.getOwnPropertyDescriptor(rec, 'signed')?.get).toBeUndefined();
    }
    for (const [id, leaf] of ids.scans) expect(c.services.ledgers.scans.indexOf(id)).toBe(leaf);
    for (const [id, leaf] of ids.commands) expect(c.services.ledgers.commands.indexOf(id)).toBe(leaf);
    expect(c.services.ledgers.scans.indexOf('no-such-id')).toBeUndefined();
    expect(stateOf(c)).toEqual(full);
    await c.close();

    // The snapshot written from the unread texts gives the same state, and its ledgers hold their index as text.
    const d = await compose(dir, store);
    expect(d.snapshot).toMatchObject({ used: true, seq: total });
    expect(typeof d.services.ledgers.scans.exportState().ids).toBe('string');
    expect(stateOf(d)).toEqual(full);
    await d.close();
  }, 120_000);

  it('a snapshot taken in slices while entries are committed holds exactly the state at its seq', async () => {
    const cut = Math.floor((total * 4) / 5); // late enough that commands exist
    const dir = copyFixture(cut);
    const store = await storeFor(dir);
    const a = await compose(dir, store);
    // One history and one node record per slice: every slice is a turn in which the commits below can land, and
    // they change what the capture has not copied yet (histories pushed to, node records replaced).
    const atCut = a.services.state.nodes.size;
    const atCommands = a.services.state.commands.byId.size;
    const saved = { ...captureSlices };
    Object.assign(captureSlices, { histories: 1, nodes: 1, commands: 1 });
    let during = 0;
    let snap: Buffer;
    try {
      const nodes = [...a.services.state.nodes.values()].filter((n) => n.enrollment === 'approved').map((n) => n.node_id);
      expect(nodes.length).toBeGreaterThan(2);
      const commandIds = [...a.services.state.commands.byId.keys()];
      expect(commandIds.length).toBeGreaterThan(2);
      captureSlices.between = async () => {
        const i = during++;
        // From the far end: histories and records the capture has not reached yet (it goes in node order).
        const node = nodes[nodes.length - 1 - (i % nodes.length)]!;
        await a.services.submit({ kind: 'heartbeat', node_id: node, author: `node:${node}`, body: heartbeatBody(node, { id: `during-${i}`, services_ok: i % 3 !== 0 }) });
        if (i % 4 === 0) await a.services.submit({ kind: 'note', author: 'admin', body: { text: `during ${i}` } });
        // Command records the capture has not serialised yet change too (deliveries, status, updated_at).
        const cmd = commandIds[commandIds.length - 1 - (i % commandIds.length)]!;
        await a.services.submit({ kind: 'command', author: 'cc', body: { event: 'delivered', command_id: cmd, status: 'delivered', attempt: 100 + i } });
      };
      const taken = await a.snapshotter!.snapshot();
      expect(taken?.seq).toBe(cut);
      snap = readFileSync(join(dir, 'state', SNAPSHOT_FILE));
    } finally {
      Object.assign(captureSlices, saved);
      delete captureSlices.between;
    }
    expect(during).toBeGreaterThanOrEqual(2 * atCut + atCommands); // at every slice boundary
    expect(a.services.state.lastSeq).toBeGreaterThan(cut + during);
    await a.close(); // writes a final snapshot: put the sliced one back
    writeFileSync(join(dir, 'state', SNAPSHOT_FILE), snap, { mode: 0o600 });

    const b = await compose(dir, store);
    expect(b.snapshot).toMatchObject({ used: true, seq: cut });
    const fromSnapshot = stateOf(b);
    await b.close();
    const c = await compose(dir, store, { snapshotOff: true });
    const full = stateOf(c);
    await c.close();
    expect(fromSnapshot).toEqual(full);
  }, 120_000);
});

describe('state snapshot fallbacks (jsonl store)', () => {
  let full: Record<string, string>;
  let good: Buffer;
  let cut: number;

  beforeAll(async () => {
    cut = Math.floor((total * 4) / 5); // late enough that both ledgers have leaves before it
    const early = copyFixture(cut);
    const a = await composeTestCenter(early, { attentionCheckSecs: 3600, orchestratorTickSecs: 0 }, { timers: inert, log: recordingLog() });
    await a.snapshotter!.snapshot();
    await a.close();
    good = readFileSync(join(early, 'state', SNAPSHOT_FILE));
    const dir = copyFixture();
    const c = await composeTestCenter(dir, { snapshotOff: true, attentionCheckSecs: 3600, orchestratorTickSecs: 0 }, { timers: inert });
    full = stateOf(c);
    await c.close();
  }, 120_000);

  const decodeOk = (b: Buffer) => {
    const d = decodeSnapshot(b, { centerVersion: VERSION, settings: {} });
    if (!d.ok) throw new Error(d.reason);
    return d;
  };

  /** Re-encodes the good snapshot with a changed header (a valid checksum: only the content is wrong). */
  const reheader = (change: Record<string, unknown>): Buffer => {
    const d = decodeSnapshot(good, { centerVersion: VERSION, settings: {} });
    if (!d.ok) throw new Error(d.reason);
    return encodeSnapshot({ ...d.header, ...change } as never, d.payload);
  };

  const cases: Array<[string, () => Buffer | undefined, RegExp]> = [
    ['missing', () => undefined, /there is none/],
    ['corrupt (one byte of the payload flipped)', () => {
      const b = Buffer.from(good);
      b[b.length - 100] ^= 0x55;
      return b;
    }, /checksum mismatch/],
    ['truncated', () => good.subarray(0, Math.floor(good.length * 0.7)), /checksum mismatch|truncated/],
    ['empty', () => Buffer.alloc(0), /not a state snapshot/],
    ['an older format version', () => reheader({ v: SNAPSHOT_VERSION - 1 }), new RegExp(`format version ${SNAPSHOT_VERSION - 1}`)],
    ['no format version', () => reheader({ v: 0 }), /malformed header/],
    ['a newer format version', () => reheader({ v: SNAPSHOT_VERSION + 1 }), new RegExp(`format version ${SNAPSHOT_VERSION + 1}`)],
    ['another release', () => reheader({ center_version: '0.0.1-old' }), /written by release 0\.0\.1-old/],
    ['other projection settings', () => reheader({ settings: { historySize: 7, sseRetain: 2048, eventsWindow: 500, recentIds: 200000 } }), /historySize/],
    ['a seq beyond the end of the log', () => reheader({ seq: total + 50 }), /does not hold/],
    ['another log (the line at its seq differs)', () => reheader({ line_sha256: 'ab'.repeat(32) }), /not the one it was taken after/],
  ];

  it.each(cases)('%s: falls back to a full replay, says why, and the state is still equal', async (_name, make, reason) => {
    const dir = copyFixture();
    const bytes = make();
    if (bytes) writeFileSync(join(dir, 'state', SNAPSHOT_FILE), bytes, { mode: 0o600 });
    const log = recordingLog();
    const c = await composeTestCenter(dir, { attentionCheckSecs: 3600, orchestratorTickSecs: 0 }, { timers: inert, log });
    try {
      expect(c.snapshot.used).toBe(false);
      expect(c.snapshot.used ? '' : c.snapshot.reason).toMatch(reason);
      expect(c.replay.afterSeq).toBe(0);
      expect(c.replay.envelopes).toBe(total);
      if (bytes) expect(log.lines.some((l) => l.startsWith('WARN state snapshot') && /replaying the whole log/.test(l))).toBe(true);
      expect(stateOf(c)).toEqual(full);
    } finally {
      await c.close();
    }
  }, 60_000);

  it('the checksum is checked piece by piece: the same verdict as over one buffer, wherever a byte is flipped', () => {
    const expectation = { centerVersion: VERSION, settings: {} };
    for (const piece of [1 << 20, 4096, 997]) expect(checkSnapshot(bufferBytes(good), expectation, piece)).toMatchObject({ ok: true, payloadStart: good.length - decodeOk(good).payload.length });
    for (const at of [200, Math.floor(good.length / 2), good.length - 1]) {
      const bad = Buffer.from(good);
      bad[at] ^= 0x01;
      for (const piece of [4096, 997]) expect(checkSnapshot(bufferBytes(bad), expectation, piece)).toMatchObject({ ok: false, reason: expect.stringMatching(/checksum mismatch/) });
    }
  });

  it('a load reads the file part by part: each byte once, no read larger than the largest part, and what it keeps owns its memory', () => {
    const d = decodeOk(good);
    const parts = splitPayload(d.payload);
    expect(parts.nodeChunks.length).toBeGreaterThanOrEqual(1);
    const largest = Math.max(parts.block.byteLength, ...parts.nodeChunks.map((c) => Buffer.byteLength(c)), parts.early.length, ...parts.commandChunks.map((c) => c.length), parts.late.length, parts.rings.length, parts.maps.length, Buffer.byteLength(parts.ledgerIds.scans), Buffer.byteLength(parts.ledgerIds.commands));
    const file = bufferBytes(good);
    const reads: number[] = [];
    // Every read returns a copy, as the file reader does: nothing decoded may be a view into another part.
    const recording = {
      size: file.size,
      read: (position: number, length: number) => {
        reads.push(length);
        return Buffer.from(file.read(position, length));
      },
      readInto: (position: number, target: Uint8Array) => {
        reads.push(target.length);
        file.readInto(position, target);
      },
    };
    const restore = prepareRestore({ src: recording, start: good.length - d.payload.length }, { state: { historySize: d.header.settings.historySize } } as never);
    expect(restore.seq).toBe(cut);
    expect(reads.reduce((a, b) => a + b, 0)).toBe(d.payload.length);
    expect(Math.max(...reads)).toBe(largest);
    expect(largest).toBeLessThan(d.payload.length); // never the whole payload in one buffer
    const owns = (a: ArrayBufferView) => a.byteOffset === 0 && a.byteLength === a.buffer.byteLength;
    for (const l of [restore.ledgers.scans, restore.ledgers.commands]) {
      expect(owns(l.seqs)).toBe(true);
      for (const level of l.tree?.levels ?? []) if (level instanceof Uint8Array) expect(owns(level)).toBe(true);
    }
  });

  it('a leaf cache that does not give the snapshot\'s root: the ledger rehashes its journal, the rest still comes from the snapshot', async () => {
    const dir = copyFixture();
    writeFileSync(join(dir, 'state', SNAPSHOT_FILE), good, { mode: 0o600 });
    const d = decodeSnapshot(good, { centerVersion: VERSION, settings: {} });
    if (!d.ok) throw new Error(d.reason);
    const sizes = (deserialize(splitPayload(d.payload).early) as { ledgers: Record<string, { size: number }> }).ledgers;
    const [changed, kept] = sizes.scans!.size > 0 ? ['scans', 'commands'] : ['commands', 'scans'];
    expect(sizes[changed]!.size).toBeGreaterThan(0);
    const leaves = join(dir, 'logs', changed === 'scans' ? 'sovereign-scans.leaves' : 'commands.leaves');
    const cache = readFileSync(leaves);
    cache[5] ^= 0xff;
    writeFileSync(leaves, cache);
    const log = recordingLog();
    const c = await composeTestCenter(dir, { attentionCheckSecs: 3600, orchestratorTickSecs: 0 }, { timers: inert, log });
    try {
      expect(c.snapshot.used).toBe(true);
      expect(log.lines.some((l) => l.startsWith(`WARN ledger (${changed}): its leaf cache does not give the snapshot's root`))).toBe(true);
      expect(log.lines.some((l) => l.startsWith(`WARN ledger (${kept})`))).toBe(false);
      expect(stateOf(c)).toEqual(full);
    } finally {
      await c.close();
    }
  }, 60_000);

  it('the temp file of a snapshot write a crash interrupted is removed at start', async () => {
    const dir = copyFixture();
    writeFileSync(join(dir, 'state', SNAPSHOT_FILE), good, { mode: 0o600 });
    const stale = join(dir, 'state', `${SNAPSHOT_FILE}.tmp-4242-deadbeef`);
    writeFileSync(stale, good.subarray(0, 100), { mode: 0o600 });
    const c = await composeTestCenter(dir, { attentionCheckSecs: 3600, orchestratorTickSecs: 0 }, { timers: inert, log: recordingLog() });
    expect(c.snapshot.used).toBe(true);
    expect(existsSync(stale)).toBe(false);
    await c.close();
  }, 60_000);

  it('--repair never uses a snapshot: it checks the whole log', async () => {
    const dir = copyFixture();
    writeFileSync(join(dir, 'state', SNAPSHOT_FILE), good, { mode: 0o600 });
    const c = await composeTestCenter(dir, { repair: true, attentionCheckSecs: 3600, orchestratorTickSecs: 0 }, { timers: inert, log: recordingLog() });
    expect(c.snapshot).toMatchObject({ used: false, reason: expect.stringMatching(/--repair/) });
    expect(stateOf(c)).toEqual(full);
    await c.close();
  }, 60_000);

  it('a torn last line after the snapshot is set aside exactly as in a full replay', async () => {
    const dir = copyFixture();
    writeFileSync(join(dir, 'state', SNAPSHOT_FILE), good, { mode: 0o600 });
    const events = join(dir, 'logs', 'events.jsonl');
    writeFileSync(events, `${readFileSync(events, 'utf8')}{"torn`);
    const c = await composeTestCenter(dir, { attentionCheckSecs: 3600, orchestratorTickSecs: 0 }, { timers: inert, log: recordingLog() });
    try {
      expect(c.snapshot.used).toBe(true);
      expect(c.replay.tornTails).toEqual([expect.objectContaining({ file: events, bytes: 6 })]);
      expect(readFileSync(events, 'utf8').endsWith('\n')).toBe(true);
      expect(existsSync(c.replay.tornTails[0]!.movedTo)).toBe(true);
      expect(stateOf(c)).toEqual(full);
    } finally {
      await c.close();
    }
  }, 60_000);
});

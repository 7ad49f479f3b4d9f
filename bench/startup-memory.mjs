#!/usr/bin/env node
/**
 * What holds memory after a center's start-up (run by bench/startup.mjs in its own child, `node --expose-gc`):
 * composes the real center in-process on a log dir (full replay, background jobs inert), then, after a GC each
 * time, releases one part at a time and reports how much heap (and ArrayBuffer memory) each part held, plus RSS.
 *
 *   node --expose-gc bench/startup-memory.mjs <dir-with-logs-and-state>
 * Prints one JSON line: { rssMb, heapMb, arrayBuffersMb, parts: { name: MB } }.
 */
import { join } from 'node:path';
import { dist } from './lib/center-process.mjs';

const dir = process.argv[2];
const gc = globalThis.gc;
if (!gc || !dir) throw new Error('usage: node --expose-gc bench/startup-memory.mjs <dir>');
const { composeCenter } = await dist('command-center/center.js');
const { resolveCenterConfig } = await dist('command-center/config.js');
const inert = { setInterval: () => 0, clearInterval: () => {}, setTimeout: () => 0, clearTimeout: () => {} };
const quiet = { info: () => {}, warn: () => {}, error: () => {} };
const mem = () => {
  gc();
  gc();
  const m = process.memoryUsage();
  return { heap: m.heapUsed / 1e6, heapTotal: m.heapTotal / 1e6, ab: m.arrayBuffers / 1e6, external: m.external / 1e6, rss: m.rss / 1e6 };
};
const before = mem();
const config = resolveCenterConfig({ port: 0, logDir: join(dir, 'logs'), stateDir: join(dir, 'state'), snapshotOff: true, newCenterKey: true, orchestratorTickSecs: 0, attentionCheckSecs: 3600, verifyWorkers: 0 }, {}); // no worker: one cannot start under --expose-gc
const center = await composeCenter(config, { log: quiet, timers: inert });
const after = mem();
const parts = {};
let last = after;
const release = (name, fn) => {
  fn();
  const now = mem();
  parts[name] = Math.round((last.heap - now.heap + last.ab - now.ab) * 10) / 10;
  last = now;
};
const { state, recentIds, bus, eventLog } = center.snapshotParts;
release('heartbeat histories (Float64Array rings)', () => {
  for (const n of state.nodes.values()) n.history = undefined;
});
release('node records (last heartbeat, latest scan + findings, facts)', () => state.nodes.clear());
release('commands (signed commands, receipts, indexes)', () => {
  state.commands.byId.clear();
  state.commands.open.clear();
  state.commands.byIdempotencyKey.clear();
});
release('recent ids (de-duplication window)', () => {
  const max = recentIds.exportState().max;
  recentIds.importState({ max, next: 0, seqs: new Float64Array(max).fill(-1), lengths: new Uint32Array(max), keys: new Uint8Array(0) });
});
release('SSE ring + event windows', () => {
  bus.importRing({ envelopes: [], droppedUpTo: 0 });
  eventLog.importWindows({});
});
// What is left: the ledgers (Merkle trees of the scan and command logs, their id index and seq list) and the services.
process.stdout.write(JSON.stringify({ rssMb: after.rss, heapTotalMb: after.heapTotal, externalMb: after.external, baseRssMb: before.rss, heapMb: after.heap - before.heap, arrayBuffersMb: after.ab - before.ab, remainingMb: last.heap - before.heap + last.ab - before.ab, parts }) + '\n');
process.exit(0);

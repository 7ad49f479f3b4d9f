#!/usr/bin/env node
/**
 * State snapshot pause (run `npm run build` first; it imports dist/): how long a snapshot holds the event loop, and
 * what that does to heartbeats acknowledged meanwhile, at 10,000 nodes. In one process: a center (startCenter, the
 * real composition) replays bench/startup.mjs's generated log (VAULTMESH_BENCH_STARTUP_* pick the size, as there),
 * then heartbeats are submitted through its pipeline at RATE/s (journaled, fsynced, applied), and the state is
 * captured twice under that load:
 *
 * - baseline: the same capture in one turn of the event loop (what a snapshot cost before it was sliced);
 * - sliced: the capture as the snapshotter runs it (first turn fixes the state, the rest yields between slices).
 *
 * Rows: the longest event-loop stall during each capture (perf_hooks monitorEventLoopDelay, max) and the p99, from
 * their due time, of the heartbeats due during the capture. Ratio = sliced / one turn, in the same run. Heartbeats go through
 * `services.submit`, not HTTP, so the figure is the center's own stall, not the generator's.
 *
 *   node bench/snapshot-pause.mjs                     # prints a table
 *   import { run } from './bench/snapshot-pause.mjs'  # rows
 * Bounded: ≈ 30-90 s (replay of the log dominates). VAULTMESH_BENCH_SNAPSHOT_RATE (default 1000 heartbeats/s).
 */
import { cpSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { dist } from './lib/center-process.mjs';
import { quantile, round } from './lib/stats.mjs';
import { ensureJournals, JOURNALS, OUT } from './startup.mjs';
import { nodeId } from './lib/replay-log.mjs';

const RATE = Number(process.env.VAULTMESH_BENCH_SNAPSHOT_RATE ?? 1000);
const NODES = Number(process.env.VAULTMESH_BENCH_STARTUP_NODES ?? 10_000);

/**
 * Submits heartbeats at `rate`/s until stopped, on a schedule: each one's latency runs from the time it was due, so a
 * stall that delays sending counts in full (no coordinated omission).
 */
function load(services, rate) {
  const acks = [];
  let stopped = false;
  let i = 0;
  const start = performance.now();
  const gap = 1000 / rate;
  const timer = setInterval(() => {
    const now = performance.now();
    for (; !stopped && start + i * gap <= now; i++) {
      const n = nodeId(i % NODES);
      const due = start + i * gap;
      services
        .submit({ kind: 'heartbeat', node_id: n, author: `node:${n}`, body: { node_id: n, hostname: `${n}.bench`, os_profile: 'debian', cloudflare_ok: true, services_ok: true, vaultmesh_root: '/var/lib/vaultmesh', timestamp: new Date().toISOString(), agent_version: '0.1.0', metrics: { load: [0.1, 0.2, 0.3], mem_used_bytes: 1e9, mem_total_bytes: 4e9, disk_used_bytes: 1e10, disk_total_bytes: 1e11, uptime_s: i } } })
        .then(() => acks.push({ at: due, ms: performance.now() - due }), () => acks.push({ at: due, ms: NaN }));
    }
  }, 5);
  return {
    acks,
    stop() {
      stopped = true;
      clearInterval(timer);
    },
  };
}

/** One capture under load: the longest stall, the ack p99 of heartbeats submitted while it ran, its own time. */
async function measure(services, capture) {
  const h = monitorEventLoopDelay({ resolution: 5 });
  const l = load(services, RATE);
  await new Promise((r) => setTimeout(r, 1500)); // the load settles
  h.enable();
  await new Promise((r) => setTimeout(r, 200)); // the monitor's first interval only sets its clock
  const before = l.acks.filter((a) => a.at >= performance.now() - 1500).map((a) => a.ms);
  const turns = [];
  let turn = performance.now();
  const yieldToLoop = async () => {
    turns.push(performance.now() - turn);
    await new Promise((r) => setImmediate(r));
    turn = performance.now();
  };
  const from = performance.now();
  const bytes = (await capture(yieldToLoop)).reduce((n, b) => n + b.length, 0);
  const to = performance.now();
  turns.push(to - turn);
  await new Promise((r) => setTimeout(r, 500)); // what was held back is acknowledged
  h.disable();
  l.stop();
  await new Promise((r) => setTimeout(r, 500));
  const during = l.acks.filter((a) => a.at >= from && a.at <= to).map((a) => a.ms);
  return { stallMs: h.max / 1e6, longestTurnMs: Math.max(...turns), firstTurnMs: turns[0], turns: turns.length, ackP99Before: quantile(before, 0.99), ackP99: quantile(during, 0.99), acked: during.length, failed: during.filter((x) => Number.isNaN(x)).length, captureMs: to - from, bytes };
}

export async function run({ log = () => {} } = {}) {
  await ensureJournals(log);
  const { startCenter } = await dist('command-center/center.js');
  const { resolveCenterConfig } = await dist('command-center/config.js');
  const { captureState } = await dist('command-center/snapshot/center-state.js');
  const dir = mkdtempSync(join(tmpdir(), 'vm-bench-snap-'));
  mkdirSync(join(dir, 'logs'));
  for (const f of JOURNALS) cpSync(join(OUT, f), join(dir, 'logs', f));
  const quiet = { info() {}, warn() {}, error() {} };
  const config = resolveCenterConfig({ port: 0, logDir: join(dir, 'logs'), stateDir: join(dir, 'state'), newCenterKey: true, snapshotSecs: 0, snapshotEntries: 0, orchestratorTickSecs: 0, attentionCheckSecs: 3600, rateLimit: false }, {});
  const center = await startCenter(config, { log: quiet });
  const rows = [];
  try {
    const parts = center.snapshotParts;
    log(`replayed; ${parts.state.nodes.size} nodes`);
    const oneTurn = () => captureState(parts);
    const sliced = (yieldToLoop) => captureState(parts, yieldToLoop);
    await oneTurn(); // warm both paths once
    await sliced(() => new Promise((r) => setImmediate(r)));
    const base = await measure(center.services, oneTurn);
    const ours = await measure(center.services, sliced);
    const nodes = parts.state.nodes.size;
    log(`one turn: ${JSON.stringify(base)}; sliced: ${JSON.stringify(ours)}`);
    rows.push({ name: `state snapshot: longest event-loop stall during the capture (${nodes} nodes, ${RATE} hb/s)`, value: round(ours.stallMs, 0), unit: 'ms', baseline: round(base.stallMs, 0), ratio: round(ours.stallMs / base.stallMs, 3), note: `baseline: the same capture in one turn; sliced capture took ${round(ours.captureMs, 0)} ms in all (${round(ours.bytes / 2 ** 20, 1)} MiB)` });
    rows.push({ name: 'state snapshot: longest turn of the capture itself', value: round(ours.longestTurnMs, 0), unit: 'ms', baseline: round(base.longestTurnMs, 0), ratio: round(ours.longestTurnMs / base.longestTurnMs, 3), note: `the first of ${ours.turns} turns is ${round(ours.firstTurnMs, 0)} ms; the stall row also counts what runs between turns (garbage collection, the heartbeats themselves)` });
    rows.push({ name: 'state snapshot: heartbeat acknowledgement p99 (1,000 hb/s) during the capture', value: round(ours.ackP99, 0), unit: 'ms', baseline: round(base.ackP99, 0), ratio: round(ours.ackP99 / base.ackP99, 3), note: `from each heartbeat's due time; ${ours.acked} / ${base.acked} heartbeats due during the capture (sliced / one turn); p99 before the capture ${round(ours.ackP99Before, 0)} / ${round(base.ackP99Before, 0)} ms${ours.failed + base.failed ? `; ${ours.failed + base.failed} failed` : ''}` });
  } finally {
    await center.close();
    rmSync(dir, { recursive: true, force: true });
  }
  return rows;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const { printRows } = await import('./ingest.mjs');
  printRows(await run({ log: (m) => console.error(m) }));
  process.exit(0);
}

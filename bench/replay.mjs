#!/usr/bin/env node
/**
 * Replay benchmark (run `npm run build` first; it imports dist/):
 *  - 1,000,000 heartbeat lines from 10,000 nodes (plus their 10,000 enrollments in events.jsonl), canonical
 *    envelopes exactly as the journal writes them, generated once by bench/lib/replay-log.mjs and reused.
 *  - replayJournals + applyEnvelope (dist/), with the options the JSONL store's start-up replay uses, vs a plain
 *    readline + JSON.parse loop over the same files: ratio of throughputs (target ≥ 0.7), MiB/s of both, and RSS
 *    after replay (target ≤ 300 MB for 10,000 nodes, issue 17).
 *  - the real center starting on that log dir (replay + bus ring + event windows + ledgers), its replay time and RSS
 *    when it listens (target ≤ 300 MB). Every node of the log is long silent, so the leader's first sweeps then
 *    journal an `offline` and an `attention` envelope per node: how long from listening until the last of them is
 *    journaled, and the RSS and peak RSS once they are.
 * Each measurement runs in a fresh child process so its RSS is its own.
 *
 *   node bench/replay.mjs                        # prints a table
 *   import { run } from './bench/replay.mjs'     # rows { name, value, unit, baseline?, ratio? }
 * Bounded: each child is killed after 120 s. VAULTMESH_BENCH_REPLAY_LINES (default 1000000) and
 * VAULTMESH_BENCH_REPLAY_NODES (default 10000) shrink it.
 */
import { spawn } from 'node:child_process';
import { closeSync, createReadStream, linkSync, mkdirSync, copyFileSync, openSync, readSync, rmSync, statSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ROOT, dist, startCenterProcess } from './lib/center-process.mjs';
import { round } from './lib/stats.mjs';
import { REPLAY_JOURNALS as JOURNALS, ensureReplayLog, replayLogDir } from './lib/replay-log.mjs';

const SELF = fileURLToPath(import.meta.url);
const LINES = Number(process.env.VAULTMESH_BENCH_REPLAY_LINES ?? 1_000_000);
const NODES = Number(process.env.VAULTMESH_BENCH_REPLAY_NODES ?? 10_000);
const OUT = replayLogDir(LINES, NODES);
const CHILD_MS = 120_000;
/** How long to wait for the start-up sweeps' envelopes, and for how long no new one means they are done. */
const SWEEP_WAIT_MS = 60_000;
const SWEEP_QUIET_MS = 5_000;

const ensureJournals = async (log) => (await ensureReplayLog({ lines: LINES, nodes: NODES, log })).generated;


// ---- child side: one measurement per process ----
async function child(mode, dir) {
  const gc = globalThis.gc ?? (() => {});
  const t0 = performance.now();
  let count = 0;
  let extra = {};
  if (mode === 'replay') {
    const { replayJournals } = await dist('command-center/store/replay.js');
    const { applyEnvelope, createFleetState } = await dist('command-center/fleet/fleet-state.js');
    const state = createFleetState();
    // As the JSONL store replays (jsonl-store.ts): reused read buffers (a build without the option ignores it).
    const report = await replayJournals({ dir, reuseBuffers: true, visit: ({ envelope }) => applyEnvelope(state, envelope) });
    count = report.envelopes;
    extra = { nodes: state.nodes.size, heartbeats: state.counts.heartbeat ?? 0, torn: report.tornTails.length };
    globalThis.keep = state;
  } else {
    for (const f of JOURNALS) {
      const rl = createInterface({ input: createReadStream(join(dir, f)), crlfDelay: Infinity });
      for await (const line of rl) {
        if (line) {
          JSON.parse(line);
          count++;
        }
      }
    }
  }
  const ms = performance.now() - t0;
  gc();
  const mem = process.memoryUsage();
  process.stdout.write(JSON.stringify({ ms, count, rssMb: mem.rss / 1e6, heapMb: mem.heapUsed / 1e6, ...extra }) + '\n');
}

function runChild(mode, dir) {
  return new Promise((res, rej) => {
    const c = spawn(process.execPath, ['--expose-gc', SELF, '--child', mode, dir], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    c.stdout.on('data', (d) => (out += d));
    c.stderr.on('data', (d) => (err += d));
    const t = setTimeout(() => c.kill('SIGKILL'), CHILD_MS);
    c.on('exit', (code) => {
      clearTimeout(t);
      if (code === 0) res(JSON.parse(out.trim().split('\n').pop()));
      else rej(new Error(`${mode} child exited with ${code}: ${err.slice(-1000)}`));
    });
  });
}

/**
 * Counts the `offline` and `attention` lines appended to `file` after `from` bytes, reading only what is new each
 * time (the counter keeps its offset). Lines are canonical JSON, so the kind is found as `"kind":"offline"`.
 */
function sweepCounter(file, from) {
  let offset = from;
  let rest = '';
  const counts = { offline: 0, attention: 0 };
  const buf = Buffer.allocUnsafe(1 << 20);
  return () => {
    const fd = openSync(file, 'r');
    try {
      for (let n; (n = readSync(fd, buf, 0, buf.length, offset)) > 0; ) {
        offset += n;
        const lines = (rest + buf.toString('utf8', 0, n)).split('\n');
        rest = lines.pop();
        for (const l of lines) {
          if (l.includes('"kind":"offline"')) counts.offline++;
          else if (l.includes('"kind":"attention"')) counts.attention++;
        }
      }
    } finally {
      closeSync(fd);
    }
    return counts;
  };
}

/**
 * Waits until the start-up sweeps have journaled an offline and an attention envelope per node (or nothing new came
 * for SWEEP_QUIET_MS, or SWEEP_WAIT_MS passed); polled every 50 ms. Returns the time from `t0` to the last new line
 * seen, and the counts.
 */
async function waitForSweeps(count, t0) {
  let last = { offline: 0, attention: 0 };
  let lastAt = performance.now();
  while (performance.now() - t0 < SWEEP_WAIT_MS) {
    const c = count();
    if (c.offline !== last.offline || c.attention !== last.attention) {
      last = { ...c };
      lastAt = performance.now();
    }
    if ((c.offline >= NODES && c.attention >= NODES) || performance.now() - lastAt > SWEEP_QUIET_MS) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  return { ms: lastAt - t0, ...last, complete: last.offline >= NODES && last.attention >= NODES };
}

/** The real center on a copy of the log dir (events.jsonl copied, heartbeats.jsonl hard-linked: it only appends). */
async function centerStartup(bytes) {
  const dir = join(ROOT, 'bench', 'out', `replay-center-${process.pid}`);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(join(dir, 'logs'), { recursive: true });
  try {
    copyFileSync(join(OUT, 'events.jsonl'), join(dir, 'logs', 'events.jsonl'));
    try {
      linkSync(join(OUT, 'heartbeats.jsonl'), join(dir, 'logs', 'heartbeats.jsonl'));
    } catch {
      copyFileSync(join(OUT, 'heartbeats.jsonl'), join(dir, 'logs', 'heartbeats.jsonl'));
    }
    const events = join(dir, 'logs', 'events.jsonl');
    const count = sweepCounter(events, statSync(events).size);
    const t0 = performance.now();
    // The copy's monitors journal staleness and outages for these old heartbeats: they write to the copy only. The
    // log was generated, not written by a center, so there is no key to keep: --new-center-key (as bench/fleet.mjs).
    // The sweep period is an hour, so only the start-up sweeps run.
    const center = await startCenterProcess(dir, ['--new-center-key'], { maxMs: CHILD_MS, startMs: CHILD_MS - 5000, env: { VAULTMESH_ATTENTION_CHECK_SECS: '3600' } });
    const listening = performance.now();
    const startMs = listening - t0;
    const mem = center.memory();
    let sweeps;
    let after;
    try {
      sweeps = await waitForSweeps(count, listening);
      after = center.memory();
    } finally {
      await center.stop();
    }
    // The copy shares heartbeats.jsonl with the generated set: if the center changed it, regenerate next time.
    if (statSync(join(OUT, 'heartbeats.jsonl')).size + statSync(join(OUT, 'events.jsonl')).size !== bytes) rmSync(OUT, { recursive: true, force: true });
    return { replayMs: center.replayMs, startMs, rssMb: mem.rssMb, mibps: bytes / 2 ** 20 / (center.replayMs / 1000), sweeps, afterSweepsRssMb: after.rssMb, peakRssMb: after.hwmMb };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function run({ log = () => {} } = {}) {
  const rows = [];
  const t0 = performance.now();
  const generated = await ensureJournals(log);
  if (generated) rows.push({ name: `generate ${LINES} heartbeat lines (${NODES} nodes)`, value: Math.round(performance.now() - t0), unit: 'ms' });
  const bytes = JOURNALS.reduce((a, f) => a + statSync(join(OUT, f)).size, 0);
  const mib = bytes / 2 ** 20;
  // Baseline first, then ours, then the baseline again: the median-free mean of two baselines absorbs drift.
  const base1 = await runChild('readline', OUT);
  const ours = await runChild('replay', OUT);
  const base2 = await runChild('readline', OUT);
  const baseMs = (base1.ms + base2.ms) / 2;
  log(`readline ${base1.ms.toFixed(0)} / ${base2.ms.toFixed(0)} ms, replay ${ours.ms.toFixed(0)} ms`);
  if (ours.count !== NODES + LINES) throw new Error(`replay visited ${ours.count} envelopes, expected ${NODES + LINES}`);
  rows.push({
    name: `replay ${LINES} heartbeats + ${NODES} enrollments (${mib.toFixed(0)} MiB): replayJournals + applyEnvelope`,
    value: round(mib / (ours.ms / 1000), 1),
    unit: 'MiB/s',
    baseline: round(mib / (baseMs / 1000), 1),
    ratio: round(baseMs / ours.ms, 2),
    note: 'baseline: readline + JSON.parse over the same files; target ratio ≥ 0.7',
  });
  rows.push({ name: 'replay time (replayJournals + applyEnvelope)', value: Math.round(ours.ms), unit: 'ms', baseline: Math.round(baseMs), note: 'baseline: readline + JSON.parse' });
  rows.push({ name: `RSS after replay (${ours.nodes} nodes, fleet state only, after GC)`, value: round(ours.rssMb, 0), unit: 'MB', baseline: round((base1.rssMb + base2.rssMb) / 2, 0), target: '≤ 300 MB', note: 'baseline: RSS of the readline loop' });
  try {
    const c = await centerStartup(bytes);
    rows.push({ name: 'center start-up on that log dir: replay (full pipeline)', value: round(c.replayMs, 0), unit: 'ms', note: `${round(c.mibps, 1)} MiB/s; listening after ${round(c.startMs, 0)} ms` });
    rows.push({ name: 'center RSS after start-up replay (10,000 nodes)', value: round(c.rssMb, 0), unit: 'MB', target: '≤ 300 MB' });
    const s = c.sweeps;
    rows.push({
      name: `start-up sweeps after a downtime: listening → last offline/attention envelope journaled (${NODES} stale nodes)`,
      value: round(s.ms, 0),
      unit: 'ms',
      note: `${s.offline} offline + ${s.attention} attention envelopes${s.complete ? '' : ' (incomplete: fewer than one of each per node)'}`,
    });
    rows.push({ name: 'center RSS once the start-up sweeps are journaled', value: round(c.afterSweepsRssMb, 0), unit: 'MB', note: `peak RSS (VmHWM) ${round(c.peakRssMb, 0)} MB` });
  } catch (err) {
    rows.push({ name: 'center start-up on that log dir', value: 'failed', unit: '', note: String(err.message ?? err).slice(0, 200) });
  }
  return rows;
}

if (process.argv[2] === '--child') {
  await child(process.argv[3], process.argv[4]);
} else if (process.argv[1] && resolve(process.argv[1]) === SELF) {
  const { printRows } = await import('./ingest.mjs');
  printRows(await run({ log: (m) => console.error(m) }));
}

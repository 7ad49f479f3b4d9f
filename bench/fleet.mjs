#!/usr/bin/env node
/**
 * Fleet simulation (run `npm run build` first): a real center (child process, fsync=batch) with 10,000 enrolled
 * agents, fed signed heartbeats open-loop at the fleet's real rate compressed in time — 10,000 agents every 30 s is
 * 333/s — then at 3× that (1,000/s). Latency is measured from each request's scheduled send time, so a center
 * that falls behind shows its queueing. Reports ingest p50/p99, the center's CPU (/proc/<pid>/stat) and RSS
 * (/proc/<pid>/status), and GET /console first-render time (Bearer admin token) while under the 3× load.
 *
 * Enrollment is seeded: events.jsonl starts with 10,000 auto-approved enrollments exactly as the center journals
 * them (enrolling through the API is one serialized durable write per node and would eat the benchmark's budget;
 * bench/ingest.mjs enrolls through the API). Requests are signed before each phase, not in its window, and are
 * spread over 512 keep-alive connections (real agents each have their own).
 *
 *   node bench/fleet.mjs                         # prints a table
 *   import { run } from './bench/fleet.mjs'      # rows { name, value, unit, baseline?, ratio? }
 * Bounded: ≈ 60-90 s. VAULTMESH_BENCH_FLEET (default 10000), VAULTMESH_BENCH_FLEET_SECS (default 8 per phase).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { request } from 'undici';
import { makeNodes, presignHeartbeats, protocol, seedEnrollments } from './lib/agents.mjs';
import { histogramMean, signatureChecksRow, startCenterProcess } from './lib/center-process.mjs';
import { openLoop } from './lib/load.mjs';
import { cpuMeter } from './lib/proc.mjs';
import { median, quantile, round } from './lib/stats.mjs';

const FLEET = Number(process.env.VAULTMESH_BENCH_FLEET ?? 10_000);
const SECS = Number(process.env.VAULTMESH_BENCH_FLEET_SECS ?? 8);
const INTERVAL_S = 30;
// Real agents each hold their own connection; 512 keeps the generator's pool from becoming the queue at 3×.
const CONNECTIONS = 512;

/** The center's /metrics text (reading it also restarts prom-client's event-loop delay histogram). */
async function metricsText(center) {
  return (await request(`${center.url}/metrics`, { headers: { authorization: `Bearer ${center.token}` } })).body.text();
}

/** prom-client's event-loop delay (monitorEventLoopDelay) since the previous /metrics read: p99 and max, ms. */
function loopDelay(metrics) {
  const read = (name) => {
    const m = new RegExp(`^vaultmesh_cc_nodejs_eventloop_lag_${name}_seconds (\\S+)$`, 'm').exec(metrics);
    return m ? Number(m[1]) * 1000 : NaN;
  };
  return { p99: read('p99'), max: read('max') };
}

async function consoleRender(center) {
  const t0 = performance.now();
  const res = await request(`${center.url}/console`, { headers: { authorization: `Bearer ${center.token}`, accept: 'text/html' } });
  const html = await res.body.text();
  return { ms: performance.now() - t0, status: res.statusCode, bytes: html.length };
}

export async function run({ log = () => {} } = {}) {
  const rows = [];
  const dir = mkdtempSync(join(tmpdir(), 'vm-bench-fleet-'));
  let center;
  try {
    let t0 = performance.now();
    const nodes = await makeNodes(FLEET, 'fleet');
    await seedEnrollments(join(dir, 'logs'), nodes);
    log(`generated and seeded ${FLEET} agents in ${(performance.now() - t0).toFixed(0)} ms`);
    // The seeded journals were written by no center: this one makes its key (start-up refuses that by default).
    center = await startCenterProcess(dir, ['--new-center-key'], { maxMs: 170_000 });
    const nodesSeen = (await (await request(`${center.url}/api/nodes`, { headers: { authorization: `Bearer ${center.token}` } })).body.json()).length;
    if (nodesSeen !== FLEET) throw new Error(`center has ${nodesSeen} nodes, expected ${FLEET}`);
    const p = await protocol();
    const base = FLEET / INTERVAL_S;
    let index = 0;
    let consoleRows;
    for (const [label, factor] of [['1×', 1], ['3×', 3]]) {
      const rate = base * factor;
      const count = Math.ceil(rate * SECS);
      // Continue round-robin where the previous phase stopped, so each agent sends its next heartbeat.
      const rotated = nodes.slice(index % FLEET).concat(nodes.slice(0, index % FLEET));
      const { requests, signMs } = presignHeartbeats(p, rotated, count, { maxMs: 30_000, startIndex: index });
      index += requests.length;
      log(`${label}: pre-signed ${requests.length} in ${signMs.toFixed(0)} ms; sending at ${rate.toFixed(0)}/s`);
      const cpu = cpuMeter(center.pid);
      await metricsText(center); // restarts the event-loop delay histogram for this phase
      cpu.start();
      const loadP = openLoop(center.url, requests, { rate, connections: CONNECTIONS, maxMs: SECS * 1000, drainMs: 10_000 });
      if (factor === 3) {
        // Console first render while the 3× load runs (a few samples spread over the phase).
        const samples = [];
        for (let i = 0; i < 3; i++) {
          await new Promise((r) => setTimeout(r, (SECS * 1000) / 4));
          samples.push(await consoleRender(center).catch((err) => ({ ms: NaN, status: String(err.code ?? err) })));
        }
        consoleRows = samples;
      }
      const r = await loadP;
      const cpuPct = cpu.stop();
      const delay = loopDelay(await metricsText(center));
      const mem = center.memory();
      const bad = Object.entries(r.statuses).filter(([s]) => s !== '200');
      rows.push({ name: `fleet ${FLEET} agents @ ${label} (${rate.toFixed(0)} hb/s offered): ingest p50`, value: round(quantile(r.latencies, 0.5), 1), unit: 'ms' });
      rows.push({ name: `fleet ${FLEET} agents @ ${label}: ingest p99`, value: round(quantile(r.latencies, 0.99), 1), unit: 'ms', ...(factor === 3 ? { target: '≤ 100 ms' } : {}), note: `from scheduled send time; ${r.ok}/${r.sent} acknowledged${bad.length ? `, others ${JSON.stringify(Object.fromEntries(bad))}` : ''}${r.errors ? `, ${r.errors} transport errors` : ''}${r.unanswered ? `, ${r.unanswered} unanswered after drain` : ''}` });
      // Acknowledged per second until the last answer (answers that came after sending stopped count their wait).
      const ackRate = r.ok / Math.max(r.secs, r.answerSecs);
      rows.push({ name: `fleet @ ${label}: acknowledged rate`, value: round(ackRate, 0), unit: 'hb/s', baseline: round(r.offered, 0), ratio: round(ackRate / r.offered, 2), ...(factor === 3 ? { target: '≥ 0.99' } : {}), note: `baseline: offered rate; generator's worst send lag ${round(r.maxLagMs, 0)} ms` });
      if (Number.isFinite(delay.max)) rows.push({ name: `fleet @ ${label}: center event-loop delay p99 / max`, value: `${round(delay.p99, 0)} / ${round(delay.max, 0)} ms`, unit: '', note: 'monitorEventLoopDelay over the phase and its drain: how long the main thread held every request' });
      rows.push({ name: `fleet @ ${label}: center CPU / RSS`, value: `${round(cpuPct, 0)} % / ${round(mem.rssMb, 0)} MB`, unit: '', note: `peak RSS ${round(mem.hwmMb, 0)} MB` });
    }
    const metrics = await (await request(`${center.url}/metrics`, { headers: { authorization: `Bearer ${center.token}` } })).body.text();
    const batch = histogramMean(metrics, 'vaultmesh_journal_batch_entries');
    const fsync = histogramMean(metrics, 'vaultmesh_journal_fsync_seconds');
    const append = histogramMean(metrics, 'vaultmesh_journal_append_seconds');
    if (batch && fsync && append) rows.push({ name: 'fleet: group commit mean batch / durable write / append→durable', value: `${round(batch.mean, 1)} / ${round(fsync.mean * 1000, 1)} ms / ${round(append.mean * 1000, 1)} ms`, unit: '' });
    const sig = signatureChecksRow(metrics);
    if (sig) rows.push({ ...sig, name: `fleet: ${sig.name}` });
    if (consoleRows) {
      const ok = consoleRows.filter((s) => s.status === 200);
      if (ok.length) rows.push({ name: 'console first render under 3× fleet load (GET /console, Bearer)', value: round(ok[0].ms, 0), unit: 'ms', note: `median of ${ok.length}: ${round(median(ok.map((s) => s.ms)), 0)} ms; ${ok[0].bytes} bytes of HTML` });
      else rows.push({ name: 'console first render under fleet load', value: 'n/a', unit: '', note: `GET /console answered ${consoleRows.map((s) => s.status).join(', ')}` });
    }
  } finally {
    await center?.stop();
    rmSync(dir, { recursive: true, force: true });
  }
  return rows;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const { printRows } = await import('./ingest.mjs');
  printRows(await run({ log: (m) => console.error(m) }));
}

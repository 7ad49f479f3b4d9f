#!/usr/bin/env node
/**
 * Benchmark of the mission console (run `npm run build` first; it imports dist/):
 *  - first render of GET /console (in-process through the real Hono app, Bearer auth, 10 heartbeats of history per
 *    node) at 1,000 and 5,000 nodes: the cold first request (templates compile) and the median of warm ones.
 *    Baseline: JSON.stringify of the same nodes as GET /api/nodes shapes them (nodeSummary), i.e. what a JSON API
 *    answer of the same fleet costs.
 *  - the live stream's sustained fragment rate at 5,000 nodes: heartbeats noted into a ConsoleLive and flushed every
 *    simulated 250 ms tick, as the stream does; reported as changed-row fragments rendered per second and envelopes
 *    absorbed per second. Baseline: JSON.stringify of the same changed rows (nodeSummary).
 *
 *   node bench/console.mjs                       # prints a table
 *   import { run } from './bench/console.mjs'    # rows { name, value, unit, baseline?, ratio? }
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const DIST = process.env.VAULTMESH_BENCH_DIST ?? join(ROOT, 'dist');
const dist = (p) => import(pathToFileURL(join(DIST, p)).href);
const T0 = Date.UTC(2025, 0, 1, 12);
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

export async function load() {
  const [app, center, config, fleet, live, render, view, nodeView] = await Promise.all([
    dist('command-center/http/app.js'),
    dist('command-center/center.js'),
    dist('command-center/config.js'),
    dist('command-center/fleet/fleet-state.js'),
    dist('command-center/console/live.js'),
    dist('command-center/console/render.js'),
    dist('command-center/console/view-model.js'),
    dist('command-center/fleet/node-view.js'),
  ]);
  return { app, center, config, fleet, live, render, view, nodeView };
}

function heartbeatBody(id, i, ms) {
  return {
    node_id: id,
    hostname: `${id}.example`,
    os_profile: i % 3 ? 'debian' : 'ubuntu',
    cloudflare_ok: true,
    services_ok: (i + id.length) % 17 !== 0,
    vaultmesh_root: '/var/lib/vaultmesh',
    timestamp: new Date(ms).toISOString(),
    agent_version: '0.1.0',
    metrics: { load: [0.1 + (i % 7) / 10, 0.2, 0.3], mem_used_bytes: 1e9 + i * 1e6, mem_total_bytes: 4e9, disk_used_bytes: 1e10, disk_total_bytes: 1e11, uptime_s: 1000 + i },
    services: { 'nginx.service': 'active', 'ssh.service': 'active' },
  };
}

/**
 * A real center's services (no HTTP server, temp dirs) with `n` approved nodes, each with `history` heartbeats; the
 * clock is fixed. The fleet is applied to state and bus directly, not journaled: the console reads only those.
 */
export async function fleetServices(m, n, history = 10) {
  const dir = mkdtempSync(join(tmpdir(), 'vm-bench-console-'));
  let seq = 0;
  let nowMs = T0;
  const config = m.config.resolveCenterConfig({ logDir: join(dir, 'logs'), stateDir: join(dir, 'state'), fsync: 'off', attentionCheckSecs: 3600, rateLimit: false }, {});
  const center = await m.center.composeCenter(config, { log: { info: () => {}, warn: () => {}, error: () => {} }, now: () => new Date(nowMs) });
  const { services } = center;
  const commit = (kind, node_id, body, author = 'admin') => {
    const env = { v: 1, id: `e${++seq}`, seq, ts: new Date(nowMs).toISOString(), kind, node_id, author, body };
    m.fleet.applyEnvelope(services.state, env);
    services.bus.publish(env);
    return env;
  };
  const ids = Array.from({ length: n }, (_, i) => `node-${String(i).padStart(5, '0')}`);
  for (const [i, id] of ids.entries()) {
    commit('enrollment', id, { action: 'request', hostname: `${id}.example`, os_profile: i % 3 ? 'debian' : 'ubuntu', public_key: 'ab'.repeat(32), key_id: 'k'.repeat(16), agent_version: '0.1.0', facts: { arch: 'x86_64' }, auto_approved: true });
  }
  for (let h = 0; h < history; h++) {
    nowMs = T0 + h * 30_000;
    for (const [i, id] of ids.entries()) commit('heartbeat', id, heartbeatBody(id, i + h, nowMs), `node:${id}`);
  }
  nowMs += 5_000;
  const token = readFileSync(center.adminTokenFile, 'utf8').trim();
  const close = async () => {
    await center.close();
    rmSync(dir, { recursive: true, force: true });
  };
  return { services, token, ids, commit, close, advance: (ms) => (nowMs += ms), now: () => nowMs };
}

async function firstRender(m, n) {
  const { services, token, close } = await fleetServices(m, n);
  const app = m.app.createApp(services);
  const get = async () => {
    const t0 = performance.now();
    const r = await app.request('http://localhost/console?node=node-00001', { headers: { authorization: `Bearer ${token}` } });
    const html = await r.text();
    if (r.status !== 200) throw new Error(`GET /console → ${r.status}`);
    return { ms: performance.now() - t0, bytes: html.length };
  };
  const cold = await get();
  const warm = [];
  for (let i = 0; i < 7; i++) warm.push((await get()).ms);
  const json = [];
  for (let i = 0; i < 7; i++) {
    const t0 = performance.now();
    const now = services.now().getTime();
    const nodes = [...services.state.nodes.values()].sort((a, b) => (a.node_id < b.node_id ? -1 : 1)).map((x) => m.nodeView.nodeSummary(x, now, services.statusPolicy));
    JSON.stringify(nodes);
    json.push(performance.now() - t0);
  }
  await close();
  return { cold: cold.ms, warm: median(warm), bytes: cold.bytes, json: median(json) };
}

async function fragmentRate(m, n, seconds = 3) {
  const f = await fleetServices(m, n, 3);
  const renderer = m.render.createConsoleRenderer();
  const live = new m.live.ConsoleLive(f.services, renderer, { filter: m.view.NO_FILTER, canApprove: true, csrf: 'x' });
  live.full();
  // 10,000 nodes at a 30 s interval send ≈330 heartbeats/s; push 4× that through 250 ms ticks to find the ceiling.
  const perTick = 330;
  let rows = 0;
  let envelopes = 0;
  let spent = 0;
  let jsonSpent = 0;
  let i = 0;
  const budget = seconds * 1000;
  while (spent < budget) {
    f.advance(250);
    const touched = [];
    for (let k = 0; k < perTick; k++) {
      const id = f.ids[i++ % f.ids.length];
      const env = f.commit('heartbeat', id, heartbeatBody(id, i, f.now()), `node:${id}`);
      touched.push(id);
      const t0 = performance.now();
      live.note(env);
      spent += performance.now() - t0;
      envelopes++;
    }
    const t0 = performance.now();
    const html = live.flush(f.now());
    spent += performance.now() - t0;
    rows += (html.match(/<li id="node-/g) ?? []).length;
    const j0 = performance.now();
    JSON.stringify(touched.map((id) => m.nodeView.nodeSummary(f.services.state.nodes.get(id), f.now(), f.services.statusPolicy)));
    jsonSpent += performance.now() - j0;
  }
  await f.close();
  return { rowsPerSec: (rows / spent) * 1000, envPerSec: (envelopes / spent) * 1000, jsonRowsPerSec: (rows / jsonSpent) * 1000, cpuShare: spent / ((envelopes / perTick) * 250) };
}

export async function run() {
  const m = await load();
  const rows = [];
  for (const n of [1000, 5000]) {
    const r = await firstRender(m, n);
    rows.push({ name: `console first render, ${n} nodes (cold)`, value: +r.cold.toFixed(1), unit: 'ms' });
    rows.push({ name: `console first render, ${n} nodes (warm median)`, value: +r.warm.toFixed(1), unit: 'ms', baseline: +r.json.toFixed(1), ratio: +(r.warm / r.json).toFixed(1), target: '≤ 60 ms' });
    rows.push({ name: `console page size, ${n} nodes`, value: Math.round(r.bytes / 1024), unit: 'KiB', target: '≤ 300 KB' });
  }
  const f = await fragmentRate(m, 5000);
  rows.push({ name: 'console stream: changed-row fragments rendered, 5000 nodes', value: Math.round(f.rowsPerSec), unit: 'rows/s', baseline: Math.round(f.jsonRowsPerSec), ratio: +(f.jsonRowsPerSec / f.rowsPerSec).toFixed(1) });
  rows.push({ name: 'console stream: heartbeats absorbed (note + 250 ms flush), 5000 nodes', value: Math.round(f.envPerSec), unit: 'envelopes/s' });
  rows.push({ name: 'console stream: CPU share per client at 1,320 heartbeats/s', value: +(f.cpuShare * 100).toFixed(1), unit: '%', target: '≤ 2 %' });
  return rows;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const rows = await run();
  const w = Math.max(...rows.map((r) => r.name.length));
  for (const r of rows) {
    const extra = r.baseline !== undefined ? `  (baseline ${r.baseline}, ratio ${r.ratio}×)` : '';
    console.log(`${r.name.padEnd(w)}  ${String(r.value).padStart(9)} ${r.unit}${extra}`);
  }
}

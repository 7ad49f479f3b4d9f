#!/usr/bin/env node
/**
 * Benchmark of the mission console (run `npm run build` first; it imports dist/):
 *  - the first page of GET /console (in-process through the real Hono app, Bearer auth, heartbeat history per node)
 *    at 1,000 and 10,000 nodes: the cold first request (templates compile), the median of warm ones and its bytes.
 *    Baseline: the whole node list rendered as one page, which is what the console sent before it paged.
 *  - at 10,000 nodes, 8 live streams connecting one after another: the longest event-loop turn while they get their
 *    first state, against that state made in one turn per stream (what streams did before).
 *  - at 10,000 nodes under 1,000 heartbeats/s: center CPU per live console client (8 real /console/stream bodies,
 *    minus the same load with none), the bytes each client receives, and GET /console timed during the load.
 *
 *   node bench/console.mjs                       # prints a table
 *   import { run } from './bench/console.mjs'    # rows { name, value, unit, baseline?, ratio?, note?, target? }
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { monitorEventLoopDelay } from 'node:perf_hooks';

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

/** GET /console (first page, a node selected) through the real app: the cold request, the warm median, its bytes. */
async function timePage(app, token, path, advance, runs = 7) {
  const get = async () => {
    advance(1); // a new moment: no snapshot of the fleet's statuses is reused between runs
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    const r = await app.request(`http://localhost${path}`, { headers: { authorization: `Bearer ${token}` } });
    const html = await r.text();
    if (r.status !== 200) throw new Error(`GET ${path} → ${r.status}`);
    const c = process.cpuUsage(c0);
    return { ms: performance.now() - t0, cpuMs: (c.user + c.system) / 1000, bytes: Buffer.byteLength(html) };
  };
  const cold = await get();
  const warm = [];
  for (let i = 0; i < runs; i++) warm.push(await get());
  return { cold: cold.ms, warm: median(warm.map((w) => w.ms)), cpuMs: median(warm.map((w) => w.cpuMs)), bytes: cold.bytes };
}

/**
 * The console's first page at `n` nodes, against the whole list rendered as one page (what GET /console sent
 * before the list was paged: every row, measured here with the same partial and state).
 */
async function firstRender(m, f, n) {
  const app = m.app.createApp(f.services);
  const page = await timePage(app, f.token, '/console?node=node-00001', f.advance);
  const renderer = m.render.createConsoleRenderer();
  const unpaged = [];
  let unpagedBytes = 0;
  for (let i = 0; i < 3; i++) {
    f.advance(1);
    const t0 = performance.now();
    const nowMs = f.services.now().getTime();
    const statuses = m.view.computeStatuses(f.services.state, nowMs, f.services.statusPolicy);
    const sorted = m.view.sortNodes(f.services.state, statuses, 'status');
    const all = m.view.nodePage(sorted, statuses, { ...m.view.DEFAULT_VIEW, size: n }, 'node-00001');
    unpagedBytes = Buffer.byteLength(renderer.partial('node-list', { list: all, oob: false }));
    unpaged.push(performance.now() - t0);
  }
  return { ...page, unpagedMs: median(unpaged), unpagedBytes };
}

/**
 * Center CPU per console client under heartbeat load: heartbeats are applied at `rate`/s (state and bus, as ingest
 * does after the journal) for `seconds`, first with no console open, then with `clients` live console streams
 * (GET /console/stream through the real app, bodies read to the end, each client on another page, sort or filter).
 * Per-client CPU = (CPU with clients − CPU without) / clients, as a share of one core. A GET /console is timed
 * during each phase too.
 */
async function loadedClients(m, f, { rate = 1000, seconds = 5, clients = 8 } = {}) {
  const app = m.app.createApp(f.services);
  let i = 0;
  const phase = async (n) => {
    const views = ['', 'page=2', 'sort=name&page=7', 'sort=last_seen', 'status=ok&page=3', 'q=node-01&size=100', 'sort=name&size=25&page=40', 'profile=ubuntu&page=5'];
    const streams = [];
    for (let c = 0; c < n; c++) {
      const r = await app.request(`http://localhost/console/stream?${views[c % views.length]}`, { headers: { authorization: `Bearer ${f.token}` } });
      if (r.status !== 200) throw new Error(`stream → ${r.status}`);
      const reader = r.body.getReader();
      const s = { reader, bytes: 0, done: false };
      void (async () => {
        for (;;) {
          const { done, value } = await reader.read().catch(() => ({ done: true }));
          if (done) break;
          s.bytes += value.byteLength;
        }
        s.done = true;
      })();
      streams.push(s);
    }
    await new Promise((r) => setTimeout(r, 300)); // let the full-state fragments go out before measuring
    const perTickMs = 50;
    const perTick = Math.round((rate * perTickMs) / 1000);
    const bytes0 = streams.reduce((a, s) => a + s.bytes, 0);
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    const pageMs = [];
    const driver = setInterval(() => {
      f.advance(perTickMs);
      for (let k = 0; k < perTick; k++) {
        const id = f.ids[i++ % f.ids.length];
        f.commit('heartbeat', id, heartbeatBody(id, i, f.now()), `node:${id}`);
      }
    }, perTickMs);
    const deadline = t0 + seconds * 1000;
    while (performance.now() < deadline) {
      await new Promise((r) => setTimeout(r, 700));
      const p0 = performance.now();
      const r = await app.request('http://localhost/console', { headers: { authorization: `Bearer ${f.token}` } });
      await r.text();
      pageMs.push(performance.now() - p0);
    }
    clearInterval(driver);
    const wall = performance.now() - t0;
    const cpu = process.cpuUsage(cpu0);
    const sent = streams.reduce((a, s) => a + s.bytes, 0) - bytes0;
    for (const s of streams) await s.reader.cancel().catch(() => {});
    return { cpuShare: (cpu.user + cpu.system) / 1000 / wall, pageMs: median(pageMs), pageMax: Math.max(...pageMs), bytesPerClientPerSec: n ? sent / n / (wall / 1000) : 0, achieved: (i / wall) * 1000 };
  };
  const none = await phase(0);
  const some = await phase(clients);
  return { none, some, perClient: (some.cpuShare - none.cpuShare) / clients };
}

/**
 * Consoles (re)connecting at 10,000 nodes, as every open console does after a center restart: the longest
 * event-loop turn while `clients` live streams, one after another, get their first state through the real app,
 * against that first state made in one turn per stream (`ConsoleLive.full()` over an exact snapshot, which streams
 * did before). Each connect is at its own moment, more than half a status scan apart, so none shares another's
 * snapshot: the figure is what one stream's first state costs the event loop, not what sharing saves.
 */
async function reconnectTurns(m, f, clients = 8) {
  const renderer = m.render.createConsoleRenderer();
  const oneTurn = [];
  for (let c = 0; c < clients; c++) {
    f.advance(600);
    const live = new m.live.ConsoleLive(f.services, renderer, { filter: m.view.NO_FILTER, canApprove: true, csrf: 'x' });
    const t0 = performance.now();
    live.full();
    oneTurn.push(performance.now() - t0);
  }
  const app = m.app.createApp(f.services);
  const delay = monitorEventLoopDelay({ resolution: 1 });
  delay.enable();
  const decoder = new TextDecoder();
  for (let c = 0; c < clients; c++) {
    f.advance(600);
    const r = await app.request('http://localhost/console/stream', { headers: { authorization: `Bearer ${f.token}` } });
    if (r.status !== 200) throw new Error(`stream → ${r.status}`);
    const reader = r.body.getReader();
    let text = '';
    while (!text.includes('id="mission-bar"')) {
      const { done, value } = await reader.read();
      if (done) throw new Error('the stream ended before its first state');
      text += decoder.decode(value, { stream: true });
    }
    await reader.cancel();
  }
  delay.disable();
  return { oneTurnMax: Math.max(...oneTurn), oneTurnMedian: median(oneTurn), longestTurn: delay.max / 1e6 };
}

export async function run() {
  const m = await load();
  const rows = [];
  for (const n of [1000, 10000]) {
    const f = await fleetServices(m, n, n > 5000 ? 4 : 10);
    const r = await firstRender(m, f, n);
    rows.push({ name: `console first page, ${n} nodes (cold)`, value: +r.cold.toFixed(1), unit: 'ms' });
    rows.push({
      name: `console first page, ${n} nodes (warm median)`,
      value: +r.warm.toFixed(1),
      unit: 'ms',
      baseline: +r.unpagedMs.toFixed(1),
      ratio: +(r.warm / r.unpagedMs).toFixed(2),
      note: 'baseline: the whole node list rendered as one page (the console before paging)',
      ...(n === 10000 ? { target: '≤ 60 ms' } : {}),
    });
    rows.push({ name: `console first page, ${n} nodes (CPU time, warm median)`, value: +r.cpuMs.toFixed(1), unit: 'ms', note: 'process CPU time of the request: on a shared machine the wall time above includes waiting for a core' });
    rows.push({
      name: `console first page size, ${n} nodes`,
      value: Math.round(r.bytes / 1024),
      unit: 'KiB',
      baseline: Math.round(r.unpagedBytes / 1024),
      ratio: +(r.bytes / r.unpagedBytes).toFixed(3),
      note: 'baseline: the node list alone, unpaged',
      ...(n === 10000 ? { target: '≤ 300 KB' } : {}),
    });
    if (n === 10000) {
      const l = await loadedClients(m, f);
      rows.push({
        name: 'console: center CPU per live client, 10000 nodes, 1,000 heartbeats/s',
        value: +(l.perClient * 100).toFixed(2),
        unit: '% of a core',
        baseline: +(l.none.cpuShare * 100).toFixed(1),
        note: `baseline: center CPU applying the heartbeats with no console open; with 8 clients ${(l.some.cpuShare * 100).toFixed(1)} %; achieved ${Math.round(l.some.achieved)} heartbeats/s`,
        target: '≤ 2 %',
      });
      const t = await reconnectTurns(m, f);
      rows.push({
        name: 'console: a live stream\'s first state, 10000 nodes: longest event-loop turn (8 connects)',
        value: +t.longestTurn.toFixed(1),
        unit: 'ms',
        baseline: +t.oneTurnMax.toFixed(1),
        ratio: +(t.longestTurn / t.oneTurnMax).toFixed(2),
        note: `baseline: one stream's first state in one turn (ConsoleLive.full() over an exact snapshot, median ${t.oneTurnMedian.toFixed(1)} ms), as streams made it before; each connect at its own moment`,
      });
      rows.push({ name: 'console: live bytes per client, 10000 nodes, 1,000 heartbeats/s', value: Math.round(l.some.bytesPerClientPerSec / 1024), unit: 'KiB/s' });
      rows.push({
        name: 'console: GET /console under 1,000 heartbeats/s and 8 live clients, 10000 nodes (median)',
        value: +l.some.pageMs.toFixed(1),
        unit: 'ms',
        baseline: +l.none.pageMs.toFixed(1),
        ratio: +(l.some.pageMs / l.none.pageMs).toFixed(2),
        note: `baseline: the same request under the same heartbeats with no console open; max ${l.some.pageMax.toFixed(0)} ms`,
      });
    }
    await f.close();
  }
  return rows;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const rows = await run();
  const w = Math.max(...rows.map((r) => r.name.length));
  for (const r of rows) {
    const extra = `${r.baseline !== undefined ? `  (baseline ${r.baseline}${r.ratio !== undefined ? `, ratio ${r.ratio}×` : ''})` : ''}${r.target ? `  target ${r.target}` : ''}`;
    console.log(`${r.name.padEnd(w)}  ${String(r.value).padStart(9)} ${r.unit}${extra}`);
  }
}

#!/usr/bin/env node
/**
 * What maintenance windows cost the paths that run for every node or every envelope (run `npm run build` first; it
 * imports dist/):
 *  - the fleet status pass (`computeStatuses`: the console's KPIs and list, `GET /api/nodes`) at 10,000 nodes, with the
 *    center's `inMaintenance` hook (`isCovered`) and no window, and with 20 open windows (node, profile and tag targets) plus 200
 *    ended ones kept; baseline: the same pass without the hook (the center before windows existed).
 *  - applying envelopes (replay and live commits; `countHeld` runs for each) with those windows: 200,000 heartbeats
 *    (not a held kind: one Set lookup each), and 20,000 attention transitions (held kinds: each is checked against
 *    every open window); baseline: the same envelopes with no window.
 *
 *   node bench/maintenance.mjs                       # prints a table
 *   import { run } from './bench/maintenance.mjs'    # rows { name, value, unit, baseline?, ratio?, note?, target? }
 */
import { dirname, join, resolve } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { fileURLToPath, pathToFileURL } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const DIST = process.env.VAULTMESH_BENCH_DIST ?? join(ROOT, 'dist');
const dist = (p) => import(pathToFileURL(join(DIST, p)).href);
const NODES = Number(process.env.VAULTMESH_BENCH_MAINT_NODES ?? 10_000);
const HEARTBEATS = Number(process.env.VAULTMESH_BENCH_MAINT_HEARTBEATS ?? 200_000);
const T0 = Date.UTC(2026, 11, 3, 12);
const iso = (ms) => new Date(ms).toISOString();
// A full collection before each timed pass: each pass builds a 10,000-node fleet first, and whichever pass ran after
// the other's garbage would otherwise pay for it.
setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc');
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

function heartbeat(id, i, ms) {
  return {
    node_id: id, hostname: `${id}.example`, os_profile: i % 3 ? 'debian' : 'ubuntu', cloudflare_ok: true, services_ok: i % 17 !== 0,
    vaultmesh_root: '/var/lib/vaultmesh', timestamp: iso(ms), agent_version: '0.1.0',
    metrics: { load: [0.1, 0.2, 0.3], mem_used_bytes: 1e9, mem_total_bytes: 4e9, disk_used_bytes: 1e10, disk_total_bytes: 1e11, uptime_s: 1000 + i },
  };
}

function fleet(m, withWindows) {
  const state = m.fleet.createFleetState();
  let seq = 0;
  const put = (kind, node_id, body, ts = T0) => m.fleet.applyEnvelope(state, { v: 1, seq: ++seq, id: `e${seq}`, ts: iso(ts), kind, author: 'bench', ...(node_id ? { node_id } : {}), body });
  for (let i = 0; i < NODES; i++) {
    const id = `node-${String(i).padStart(5, '0')}`;
    put('enrollment', id, { action: 'request', token_id: 't', hostname: `${id}.example`, os_profile: i % 3 ? 'debian' : 'ubuntu', public_key: 'ab'.repeat(32), key_id: 'k'.repeat(16), agent_version: '0.1.0', facts: {}, auto_approved: true });
    put('heartbeat', id, heartbeat(id, i, T0), T0);
    if (i % 10 === 0) put('tag', id, { add: [`rack=${i % 50}`] });
  }
  if (withWindows) {
    const start = (window_id, target, from, to) => put('maintenance', target.node_id, { event: 'started', window_id, target, reason: 'bench', starts_at: iso(from), ends_at: iso(to), scans: 'defer' }, from);
    for (let k = 0; k < 200; k++) {
      start(`old-${k}`, { node_id: `node-${String(k).padStart(5, '0')}` }, T0 - 7200_000, T0 - 3600_000);
      put('maintenance', undefined, { event: 'ended', window_id: `old-${k}`, early: false }, T0 - 3600_000);
    }
    for (let k = 0; k < 10; k++) start(`tag-${k}`, { tag: `rack=${k}` }, T0, T0 + 7200_000);
    for (let k = 0; k < 5; k++) start(`node-${k}`, { node_id: `node-${String(k * 7).padStart(5, '0')}` }, T0, T0 + 7200_000);
    start('prof', { os_profile: 'ubuntu' }, T0, T0 + 7200_000);
    for (let k = 0; k < 4; k++) start(`later-${k}`, { tag: `rack=${k + 20}` }, T0 + 3600_000, T0 + 7200_000);
  }
  return { state, put, next: () => ++seq };
}

/** Median ms of each status pass, the variants interleaved round by round so JIT warm-up and load drift hit all alike. */
function statusPasses(m, variants, rounds = 25) {
  const nowMs = T0 + 60_000;
  for (const v of variants) m.view.computeStatuses(v.state, nowMs, v.policy); // warm-up
  const times = variants.map(() => []);
  gc();
  for (let r = 0; r < rounds; r++) {
    variants.forEach((v, i) => {
      const t = performance.now();
      m.view.computeStatuses(v.state, nowMs, v.policy);
      times[i].push(performance.now() - t);
    });
  }
  return times.map(median);
}

/** Applies a fresh batch of envelopes to a built fleet (applying again only moves heartbeats and held counts on). */
function applyPass(m, f, kind) {
  const envs = [];
  const count = kind === 'heartbeat' ? HEARTBEATS : HEARTBEATS / 10;
  for (let i = 0; i < count; i++) {
    const id = `node-${String(i % NODES).padStart(5, '0')}`;
    const ts = T0 + 1000 + i;
    if (kind === 'heartbeat') envs.push({ v: 1, seq: 0, id: `h${i}`, ts: iso(ts), kind: 'heartbeat', node_id: id, author: `node:${id}`, body: heartbeat(id, i, ts) });
    else envs.push({ v: 1, seq: 0, id: `a${i}`, ts: iso(ts), kind: 'attention', node_id: id, author: 'system:attention', body: { status: 'attn', previous: 'ok', reasons: [] } });
  }
  gc();
  const t = performance.now();
  for (const e of envs) {
    e.seq = f.next();
    m.fleet.applyEnvelope(f.state, e);
  }
  const ms = performance.now() - t;
  const held = [...(f.state.maintenance?.windows.values() ?? [])].reduce((n, w) => n + w.held.total, 0);
  return { ms, envelopes: envs.length, held };
}

export async function run() {
  const m = { fleet: await dist('command-center/fleet/fleet-state.js'), view: await dist('command-center/console/view-model.js'), maint: await dist('command-center/ops/maintenance.js') };
  const policy = { heartbeatIntervalMs: 30_000 };
  const plain = fleet(m, false);
  const windows = fleet(m, true);
  const hookOf = (state) => ({ ...policy, inMaintenance: (n, t) => m.maint.isCovered(state, n, t) });
  const [base, hookNone, hookSome] = statusPasses(m, [
    { state: plain.state, policy },
    { state: plain.state, policy: hookOf(plain.state) },
    { state: windows.state, policy: hookOf(windows.state) },
  ]);
  const covered = [...windows.state.nodes.values()].filter((n) => m.maint.activeWindowsFor(windows.state, n, T0 + 60_000).length).length;
  // Alternated, median of 5 each: the two passes allocate alike, so neither pays more of the other's garbage collection.
  const mid = (xs) => [...xs].sort((a, b) => a.ms - b.ms)[Math.floor(xs.length / 2)];
  const applyKind = (kind) => {
    const applies = { base: [], win: [] };
    for (let r = 0; r < 4; r++) {
      // Alternating which goes first, so a pass never always inherits the other's garbage.
      if (r % 2) applies.base.push(applyPass(m, plain, kind));
      applies.win.push(applyPass(m, windows, kind));
      if (!(r % 2)) applies.base.push(applyPass(m, plain, kind));
    }
    return { base: mid(applies.base), win: mid(applies.win) };
  };
  const hb = applyKind('heartbeat');
  const att = applyKind('attention');
  const k = (n) => n.toLocaleString('en-US');
  return [
    { name: `status pass, ${k(NODES)} nodes, hook and no window`, value: +hookNone.toFixed(2), unit: 'ms', baseline: +base.toFixed(2), ratio: +(hookNone / base).toFixed(2), target: '≤ 1.5×', note: 'baseline: the same pass without the inMaintenance hook' },
    { name: `status pass, ${k(NODES)} nodes, 20 open + 200 ended windows`, value: +hookSome.toFixed(2), unit: 'ms', baseline: +base.toFixed(2), ratio: +(hookSome / base).toFixed(2), target: '≤ 2×', note: `${k(covered)} nodes covered; baseline: no hook` },
    { name: `apply ${k(hb.win.envelopes)} heartbeats, with those windows`, value: +hb.win.ms.toFixed(0), unit: 'ms', baseline: +hb.base.ms.toFixed(0), ratio: +(hb.win.ms / hb.base.ms).toFixed(2), target: '≤ 1.3×', note: 'baseline: no window' },
    { name: `apply ${k(att.win.envelopes)} attention transitions, with those windows`, value: +((att.win.ms / att.win.envelopes) * 1000).toFixed(2), unit: 'µs', baseline: +((att.base.ms / att.base.envelopes) * 1000).toFixed(2), ratio: +(att.win.ms / att.base.ms).toFixed(2), note: `per envelope; ${k(att.win.held)} held-webhook counts kept after 4 passes; baseline: no window` },
  ];
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  for (const r of await run()) console.log(`${r.name.padEnd(70)} ${String(r.value).padStart(9)} ${r.unit.padEnd(3)} baseline ${r.baseline} ratio ${r.ratio}${r.target ? ` (${r.target})` : ''} ${r.note ?? ''}`);
}

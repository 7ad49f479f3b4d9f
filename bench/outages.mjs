#!/usr/bin/env node
/**
 * What declaring outages costs the leader (run `npm run build` first): the outage sweep (`outageActions` over every
 * node, command-center/fleet/outages.ts) runs every `--attention-check-secs` beside the attention sweep
 * (`assessNode` over every node), which is the baseline measured in the same process on the same fleet state: 10,000
 * approved nodes, each with a heartbeat, none offline, and again with a tenth of them declared offline and returning.
 * Alternating rounds, median per sweep. In-process, one core.
 *
 *   node bench/outages.mjs                        # prints a table
 *   import { run } from './bench/outages.mjs'     # rows { name, value, unit, baseline, ratio, target }
 * Bounded: VAULTMESH_BENCH_OUTAGE_NODES (default 10000) and 40 rounds.
 */
import { fileURLToPath } from 'node:url';
import { dist } from './lib/center-process.mjs';
import { median, round } from './lib/stats.mjs';

const NODES = Number(process.env.VAULTMESH_BENCH_OUTAGE_NODES ?? 10_000);
const ROUNDS = 40;

export async function run() {
  const { createFleetState, applyEnvelope } = await dist('command-center/fleet/fleet-state.js');
  const { outageActions } = await dist('command-center/fleet/outages.js');
  const { assessNode } = await dist('command-center/ops/attention.js');
  const t0 = Date.parse('2026-01-01T00:00:00Z');
  const interval = 30_000;
  const threshold = 5 * interval;
  const state = createFleetState();
  let seq = 0;
  const apply = (kind, nodeId, body, at) => applyEnvelope(state, { v: 1, id: `e${++seq}`, seq, ts: new Date(at).toISOString(), kind, node_id: nodeId, author: kind === 'offline' ? 'system:outages' : `node:${nodeId}`, body });
  const heartbeat = (id, at, outbox = { queued: 0, delivered: 0 }) =>
    apply('heartbeat', id, { node_id: id, hostname: `${id}.example`, os_profile: 'debian', cloudflare_ok: true, services_ok: true, vaultmesh_root: '/var/lib/vaultmesh', timestamp: new Date(at).toISOString(), agent_version: '0.1.0', metrics: { load: [0.5, 0.5, 0.25], mem_used_bytes: 2e9, mem_total_bytes: 8e9, disk_used_bytes: 4e10, disk_total_bytes: 1e11, uptime_s: 86400 }, outbox }, at);
  for (let i = 0; i < NODES; i++) {
    const id = `node-${String(i).padStart(5, '0')}`;
    apply('enrollment', id, { action: 'request', token_id: 't', hostname: `${id}.example`, os_profile: 'debian', public_key: '00'.repeat(32), key_id: 'k', agent_version: '0.1.0', facts: {}, auto_approved: true }, t0);
    heartbeat(id, t0 + (i % 30) * 1000);
  }
  const policy = { heartbeatIntervalMs: interval };
  const sweeps = (nowMs) => ({
    outage: () => {
      // One context per sweep, as the monitor makes it.
      const ctx = { nowMs, thresholdMs: threshold, sinceMs: t0 };
      let n = 0;
      for (const node of state.nodes.values()) n += outageActions(node, state.outages.get(node.node_id), ctx).length;
      return n;
    },
    attention: () => {
      let n = 0;
      for (const node of state.nodes.values()) n += assessNode(node, nowMs, policy).reasons.length;
      return n;
    },
  });
  const measure = (fns) => {
    const times = { outage: [], attention: [] };
    for (let r = 0; r < ROUNDS; r++) {
      for (const k of r % 2 ? ['attention', 'outage'] : ['outage', 'attention']) {
        const a = performance.now();
        fns[k]();
        times[k].push(performance.now() - a);
      }
    }
    return { outage: median(times.outage), attention: median(times.attention) };
  };
  const quiet = measure(sweeps(t0 + 60_000));
  // A tenth of the fleet declared offline, then back with a report still draining: the sweep reads their outages.
  let k = 0;
  for (const node of state.nodes.values()) {
    if (k++ % 10) {
      heartbeat(node.node_id, t0 + 300_000); // the rest heard from as usual
      continue;
    }
    apply('offline', node.node_id, { last_heartbeat_seq: node.last_heartbeat_seq, last_heartbeat_ts: node.last_seen, silent_s: 151, threshold_s: 150, due_at: new Date(Date.parse(node.last_seen) + threshold).toISOString(), declared_late: false }, t0 + 200_000);
    heartbeat(node.node_id, t0 + 300_000, { queued: 40, delivered: 1 });
  }
  const outages = measure(sweeps(t0 + 310_000));
  const n = NODES.toLocaleString('en-US');
  return [
    { name: `outage sweep, ${n} nodes, none offline`, value: round(quiet.outage, 2), unit: 'ms', baseline: round(quiet.attention, 2), ratio: round(quiet.attention / quiet.outage, 2), target: '≥ 1', note: 'baseline: the attention sweep over the same nodes; ratio > 1: cheaper' },
    { name: `outage sweep, ${n} nodes, a tenth returning`, value: round(outages.outage, 2), unit: 'ms', baseline: round(outages.attention, 2), ratio: round(outages.attention / outages.outage, 2), target: '≥ 1', note: 'baseline: the attention sweep' },
  ];
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  for (const r of await run()) console.log(`${r.name}: ${r.value} ${r.unit} (baseline ${r.baseline}, ratio ${r.ratio}, target ${r.target})`);
}

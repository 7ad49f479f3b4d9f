#!/usr/bin/env node
/**
 * Benchmark for several replicas on one PostgreSQL database (run `npm run build` first; it imports dist/):
 *  - commit latency (request → durable answer) of signed heartbeats and of notes with an Idempotency-Key, closed loop
 *    with 8 clients, on 3 replicas (clients spread round-robin) vs the same load on 1 center on its own database;
 *  - tail lag: for each envelope written during the 3-replica run, the time from the first replica's SSE stream
 *    publishing it to the last one's (p50 / p99), and the lag in seqs behind the database's head (sampled).
 *
 *   node bench/replicas.mjs                       # prints a table
 *   import { run } from './bench/replicas.mjs'    # rows { name, value, unit, baseline?, ratio? }
 *
 * Bounded: REQUESTS (default 600) per run, 20 s per run at most; every process is stopped at the end.
 */
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { request } from 'undici';
import { startCenterProcess } from './lib/center-process.mjs';
import { enrollViaApi, makeNodes, protocol, signedHeartbeat } from './lib/agents.mjs';
import { postgresMissing, startBenchPostgres } from './lib/postgres.mjs';
import { quantile, round, row } from './lib/stats.mjs';

const REQUESTS = Number(process.env.VAULTMESH_BENCH_REPLICA_REQUESTS ?? 600);
const CLIENTS = 8;

async function centers(dbUrl, count) {
  const base = mkdtempSync(join(tmpdir(), 'vm-bench-replicas-'));
  const args = ['--store', 'postgres', '--database-url', dbUrl, '--auto-approve'];
  const first = await startCenterProcess(join(base, 'r0'), args);
  const all = [first];
  try {
    for (let i = 1; i < count; i++) {
      cpSync(join(base, 'r0', 'state'), join(base, `r${i}`, 'state'), { recursive: true, filter: (src) => !src.endsWith('.sock') && !src.endsWith('.lock') });
      all.push(await startCenterProcess(join(base, `r${i}`), args));
    }
  } catch (err) {
    await Promise.all(all.map((c) => c.stop()));
    throw err;
  }
  return { all, token: first.token, async stop() { await Promise.all(all.map((c) => c.stop())); rmSync(base, { recursive: true, force: true }); } };
}

async function stream(url, token) {
  const controller = new AbortController();
  const res = await fetch(`${url}/events`, { headers: { accept: 'text/event-stream', authorization: `Bearer ${token}` }, signal: controller.signal });
  const arrived = new Map();
  const pump = (async () => {
    const reader = res.body.getReader();
    const dec = new TextDecoder();
    let buf = '';
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return;
        buf += dec.decode(value, { stream: true });
        let at;
        while ((at = buf.indexOf('\n\n')) !== -1) {
          const id = /^id: (\d+)$/m.exec(buf.slice(0, at))?.[1];
          buf = buf.slice(at + 2);
          if (id !== undefined) arrived.set(Number(id), performance.now());
        }
      }
    } catch {
      /* aborted */
    }
  })();
  return { arrived, async close() { controller.abort(); await pump; } };
}

/** One closed-loop run of heartbeats and notes over `set`'s centers; latencies per kind, and tail lag when several. */
async function load(set, p, nodes) {
  const urls = set.all.map((c) => c.url);
  const streams = await Promise.all(urls.map((u) => stream(u, set.token)));
  const lat = { heartbeat: [], note: [] };
  const lagSeqs = [];
  let next = 0;
  let sampling = true;
  const end = Date.now() + 20_000;
  const sampler = (async () => {
    while (sampling && urls.length > 1) {
      const seqs = await Promise.all(urls.map(async (u) => (await (await request(`${u}/healthz`)).body.json()).seq));
      const head = Math.max(...seqs);
      for (const s of seqs) lagSeqs.push(head - s);
      await new Promise((r) => setTimeout(r, 10));
    }
  })();
  const runId = Math.random().toString(36).slice(2, 8);
  await Promise.all(
    Array.from({ length: CLIENTS }, async (_, c) => {
      while (next < REQUESTS && Date.now() < end) {
        const i = next++;
        const url = urls[i % urls.length];
        const t0 = performance.now();
        let res;
        if (i % 2 === 0) {
          const hb = signedHeartbeat(p, nodes[i % nodes.length], i);
          res = await request(url + hb.path, { method: 'POST', headers: hb.headers, body: hb.body });
        } else {
          res = await request(`${url}/api/events`, {
            method: 'POST',
            headers: { authorization: `Bearer ${set.token}`, 'content-type': 'application/json', 'idempotency-key': `${runId}-note-${i}` },
            body: JSON.stringify({ kind: 'note', body: { text: `note ${i} from client ${c}` } }),
          });
        }
        const text = await res.body.text();
        if (res.statusCode !== 200 && res.statusCode !== 201) throw new Error(`${res.statusCode} ${text}`);
        lat[i % 2 === 0 ? 'heartbeat' : 'note'].push(performance.now() - t0);
      }
    }),
  );
  sampling = false;
  await sampler;
  // Wait (bounded) until every stream has everything, then measure first-to-last publication per seq.
  const head = Math.max(...(await Promise.all(urls.map(async (u) => (await (await request(`${u}/healthz`)).body.json()).seq))));
  const waitEnd = Date.now() + 10_000;
  while (streams.some((s) => !s.arrived.has(head)) && Date.now() < waitEnd) await new Promise((r) => setTimeout(r, 20));
  const lagMs = [];
  for (const seq of streams[0].arrived.keys()) {
    const times = streams.map((s) => s.arrived.get(seq));
    if (times.every((t) => t !== undefined)) lagMs.push(Math.max(...times) - Math.min(...times));
  }
  await Promise.all(streams.map((s) => s.close()));
  return { lat, lagMs, lagSeqs };
}

export async function run() {
  const p = await protocol();
  const missing = postgresMissing();
  if (missing) throw new Error(`not available: ${missing}`);
  const server = await startBenchPostgres();
  const rows = [];
  try {
    const results = {};
    for (const count of [1, 3]) {
      const set = await centers(server.url(await server.newDatabase()), count);
      try {
        const nodes = await makeNodes(24, `rep${count}`);
        await enrollViaApi(set.all[0].url, set.token, nodes, 8);
        // Every replica knows the nodes before the timed window.
        const end = Date.now() + 10_000;
        for (;;) {
          const seqs = await Promise.all(set.all.map(async (c) => (await (await request(`${c.url}/healthz`)).body.json()).seq));
          if (seqs.every((s) => s === seqs[0]) || Date.now() > end) break;
          await new Promise((r) => setTimeout(r, 20));
        }
        results[count] = await load(set, p, nodes);
      } finally {
        await set.stop();
      }
    }
    const one = results[1];
    const three = results[3];
    for (const kind of ['heartbeat', 'note']) {
      for (const [q, label] of [[0.5, 'p50'], [0.99, 'p99']]) {
        const base = quantile(one.lat[kind], q);
        const v = quantile(three.lat[kind], q);
        rows.push(row(`${kind} commit latency ${label}, 3 replicas (vs 1 center)`, round(v, 1), 'ms', { baseline: round(base, 1), ratio: round(v / base, 2), note: `${CLIENTS} clients, closed loop, ${three.lat[kind].length} requests` }));
      }
    }
    rows.push(row('tail lag p50 (first to last replica publishing a seq)', round(quantile(three.lagMs, 0.5), 1), 'ms', { note: `${three.lagMs.length} envelopes` }));
    rows.push(row('tail lag p99', round(quantile(three.lagMs, 0.99), 1), 'ms'));
    rows.push(row('tail lag in seqs behind the newest replica, p50 / p99 (sampled)', `${quantile(three.lagSeqs, 0.5)} / ${quantile(three.lagSeqs, 0.99)}`, 'seqs', { note: `${three.lagSeqs.length} samples` }));
  } finally {
    await server.stop();
  }
  return rows;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const rows = await run();
  for (const r of rows) console.log(`${r.name}: ${r.value} ${r.unit}${r.baseline !== undefined ? ` (baseline ${r.baseline}, ratio ${r.ratio})` : ''}${r.note ? ` — ${r.note}` : ''}`);
  process.exit(0);
}

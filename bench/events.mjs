#!/usr/bin/env node
/**
 * Benchmark for the communication layer (run `npm run build` first; it imports and runs dist/):
 *  - GET /api/events page latency over a 1,000,000-line events.jsonl: a recent page (served from the in-memory
 *    window), an old page (binary search in the journal + streaming read), the first page, and a sparse filter
 *    (node_id matching 1 line in 1,000, so ~100,000 lines are read for a page of 100). Baseline for the old page:
 *    the same page found by reading the journal from the start (what a reader without the seek would do).
 *  - the center's RSS after replaying the 1M lines and after the run (memory stays bounded: windows, not history)
 *  - POST /api/events throughput (notes, 32 concurrent clients, fsync=batch) for a bounded number of requests.
 *
 *   node bench/events.mjs                        # prints a table
 *   import { run } from './bench/events.mjs'     # rows { name, value, unit, baseline?, ratio? }
 *
 * The center runs as a child process (dist/command-center/main.js) so its RSS is its own. Bounded: well under two
 * minutes; the child is killed after 110 s. VAULTMESH_BENCH_EVENTS (default 1000000) and VAULTMESH_BENCH_POSTS
 * (default 5000) shrink it.
 */
import { spawn } from 'node:child_process';
import { createWriteStream, mkdtempSync, readFileSync, rmSync, statSync, mkdirSync } from 'node:fs';
import { once } from 'node:events';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const DIST = process.env.VAULTMESH_BENCH_DIST ?? join(ROOT, 'dist');
const N = Number(process.env.VAULTMESH_BENCH_EVENTS ?? 1_000_000);
const POSTS = Number(process.env.VAULTMESH_BENCH_POSTS ?? 5000);
const CONCURRENCY = 32;
const T0 = Date.UTC(2025, 0, 1);

const ms = (t0) => performance.now() - t0;
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** A canonical `note` envelope line (~210 bytes). */
function noteLine(seq) {
  const node = `node-${String(seq % 1000).padStart(4, '0')}`;
  const ts = new Date(T0 + seq * 100).toISOString();
  return `{"author":"bot:ci","body":{"text":"deploy ${seq} finished on ${node}"},"id":"evt-${seq}","kind":"note","node_id":"${node}","on_behalf_of":"ci-runner","seq":${seq},"ts":"${ts}","v":1}\n`;
}

async function writeJournal(file, n) {
  const out = createWriteStream(file);
  let chunk = '';
  for (let seq = 1; seq <= n; seq++) {
    chunk += noteLine(seq);
    if (chunk.length > 4 << 20) {
      if (!out.write(chunk)) await once(out, 'drain');
      chunk = '';
    }
  }
  out.end(chunk);
  await once(out, 'finish');
}

function rssMb(pid) {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

async function startChild(dir) {
  // The journal is generated here, not written by a center, so there is no center key to keep: --new-center-key
  // (without it the center refuses journals whose key is missing: CENTER_KEY_MISSING).
  const child = spawn(process.execPath, [join(DIST, 'command-center', 'main.js'), '--port', '0', '--log-dir', join(dir, 'logs'), '--state-dir', join(dir, 'state'), '--fsync', 'batch', '--new-center-key'], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, VAULTMESH_HOST: '127.0.0.1' },
  });
  const kill = setTimeout(() => child.kill('SIGKILL'), 110_000);
  kill.unref();
  let out = '';
  let err = '';
  child.stderr.on('data', (d) => (err += d));
  const url = await new Promise((res, rej) => {
    child.stdout.on('data', (d) => {
      out += d;
      const m = /listening on (http:\/\/\S+)/.exec(out);
      if (m) res(m[1]);
    });
    child.once('exit', (code) => rej(new Error(`center exited ${code}: ${err || out}`)));
  });
  const replayMs = Number(/replayed \d+ envelopes up to seq \d+ in (\d+) ms/.exec(out)?.[1] ?? NaN);
  return { child, url, replayMs, stop: async () => (child.kill('SIGTERM'), await once(child, 'exit'), clearTimeout(kill)) };
}

async function timeGets(url, token, query, times) {
  const samples = [];
  let items = 0;
  for (let i = 0; i < times; i++) {
    const q = typeof query === 'function' ? query(i) : query;
    const t0 = performance.now();
    const res = await fetch(`${url}/api/events?${q}`, { headers: { authorization: `Bearer ${token}` } });
    const body = await res.json();
    samples.push(ms(t0));
    if (res.status !== 200) throw new Error(`GET ${q}: ${res.status} ${JSON.stringify(body)}`);
    items = body.items.length;
  }
  return { ms: median(samples), items };
}

/** The old page found the naive way: read the journal from the start until the page is full. */
async function naiveOldPage(dir, since, limit) {
  const { mergeJournals } = await import(pathToFileURL(join(DIST, 'lib', 'journal', 'index.js')).href);
  const items = [];
  const t0 = performance.now();
  class Full extends Error {}
  try {
    await mergeJournals([join(dir, 'logs', 'events.jsonl')], {
      visit: ({ envelope }) => {
        if (envelope.seq > since) items.push(envelope);
        if (items.length >= limit) throw new Full();
      },
    });
  } catch (e) {
    if (!(e instanceof Full)) throw e;
  }
  return ms(t0);
}

async function postThroughput(url, token, total) {
  let next = 0;
  let failed = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < total) {
        const i = next++;
        const res = await fetch(`${url}/api/events`, {
          method: 'POST',
          headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', 'idempotency-key': `bench-${i}` },
          body: JSON.stringify({ kind: 'note', node_id: `node-${i % 1000}`, body: { text: `bench note ${i}` } }),
        });
        await res.arrayBuffer();
        if (res.status !== 201) failed++;
      }
    }),
  );
  const secs = ms(t0) / 1000;
  if (failed) throw new Error(`${failed} POSTs failed`);
  return total / secs;
}

export async function run() {
  const dir = mkdtempSync(join(tmpdir(), 'vm-bench-events-'));
  const rows = [];
  try {
    mkdirSync(join(dir, 'logs'));
    let t0 = performance.now();
    await writeJournal(join(dir, 'logs', 'events.jsonl'), N);
    const mb = statSync(join(dir, 'logs', 'events.jsonl')).size / 1e6;
    rows.push({ name: `generate events.jsonl (${N} lines, ${mb.toFixed(0)} MB)`, value: +ms(t0).toFixed(0), unit: 'ms' });

    const center = await startChild(dir);
    try {
      const token = readFileSync(join(dir, 'state', 'admin.token'), 'utf8').trim();
      rows.push({ name: `center replay of ${N} events`, value: center.replayMs, unit: 'ms' });
      rows.push({ name: 'center RSS after replay', value: +rssMb(center.child.pid).toFixed(1), unit: 'MB' });

      await timeGets(center.url, token, 'limit=1', 3); // warm-up
      const recent = await timeGets(center.url, token, `since=${N - 100}&limit=100`, 50);
      rows.push({ name: 'GET /api/events recent page (100, memory window)', value: +recent.ms.toFixed(2), unit: 'ms' });
      const oldSince = (i) => Math.floor(N * 0.25) + i * 997;
      const old = await timeGets(center.url, token, (i) => `since=${oldSince(i)}&limit=100`, 30);
      const naive = await naiveOldPage(dir, Math.floor(N / 2), 100);
      const oldMid = await timeGets(center.url, token, `since=${Math.floor(N / 2)}&limit=100`, 10);
      rows.push({ name: 'GET /api/events old page (100, journal seek + stream)', value: +old.ms.toFixed(2), unit: 'ms' });
      rows.push({ name: 'GET /api/events page at the middle vs reading from the start', value: +oldMid.ms.toFixed(2), unit: 'ms', baseline: +naive.toFixed(1), ratio: +(naive / oldMid.ms).toFixed(1) });
      const first = await timeGets(center.url, token, 'limit=1000', 10);
      rows.push({ name: 'GET /api/events first page (1000, journal)', value: +first.ms.toFixed(2), unit: 'ms' });
      const sparse = await timeGets(center.url, token, `since=${Math.floor(N / 2)}&node_id=node-0007&limit=100`, 3);
      rows.push({ name: 'GET /api/events sparse filter (node_id, 1 in 1000 lines, page of 100)', value: +sparse.ms.toFixed(1), unit: 'ms' });

      const rate = await postThroughput(center.url, token, POSTS);
      rows.push({ name: `POST /api/events throughput (${POSTS} notes, ${CONCURRENCY} clients, fsync batch)`, value: Math.round(rate), unit: 'req/s' });
      rows.push({ name: 'center RSS after the run', value: +rssMb(center.child.pid).toFixed(1), unit: 'MB' });
    } finally {
      await center.stop();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return rows;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const rows = await run();
  const w = Math.max(...rows.map((r) => r.name.length));
  for (const r of rows) {
    const extra = r.baseline !== undefined ? `   baseline ${r.baseline} ${r.unit}, ×${r.ratio}` : '';
    console.log(`${r.name.padEnd(w)}  ${String(r.value).padStart(10)} ${r.unit}${extra}`);
  }
}

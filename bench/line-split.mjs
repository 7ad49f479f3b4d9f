#!/usr/bin/env node
/**
 * Why the journal has its own line splitter and ndjson is not a dependency (run `npm run build` first):
 * the same JSONL file (canonical heartbeat envelopes, as the journal writes them) read and JSON.parse'd by
 *  - our splitter: `LineSource` from dist/ (1 MiB reads split with Buffer.indexOf), then JSON.parse per line;
 *  - ndjson 2 (`ndjson.parse()`, split2 + through2 streams), a devDependency kept only for this comparison;
 *  - node:readline + JSON.parse, the plain baseline.
 * Alternating rounds, best of each; lines/s and MiB/s. In-process, one core.
 *
 *   node bench/line-split.mjs                        # prints a table
 *   import { run } from './bench/line-split.mjs'     # rows { name, value, unit, baseline?, ratio? }
 * Bounded: VAULTMESH_BENCH_SPLIT_LINES (default 300000, ≈ 160 MiB) and 5 rounds.
 */
import { createReadStream, createWriteStream, mkdtempSync, rmSync, statSync } from 'node:fs';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { dist } from './lib/center-process.mjs';
import { round } from './lib/stats.mjs';

const LINES = Number(process.env.VAULTMESH_BENCH_SPLIT_LINES ?? 300_000);
const ROUNDS = 5;

function heartbeatLine(i) {
  const id = `node-${String(i % 10_000).padStart(5, '0')}`;
  const ts = new Date(Date.UTC(2025, 0, 1) + i * 3).toISOString();
  return (
    `{"author":"node:${id}","body":{"agent_version":"0.1.0","cloudflare_ok":true,"hostname":"${id}.example","id":"${id}-hb-${i}",` +
    `"metrics":{"disk_total_bytes":100000000000,"disk_used_bytes":${40_000_000_000 + (i % 1000) * 1_000_000},"load":[0.5,0.5,0.25],` +
    `"mem_total_bytes":8000000000,"mem_used_bytes":${2_000_000_000 + (i % 997) * 1_000_000},"uptime_s":${86400 + i}},` +
    `"node_id":"${id}","os_profile":"debian","services_ok":true,"timestamp":"${ts}","vaultmesh_root":"/var/lib/vaultmesh"},` +
    `"id":"${id}-hb-${i}","kind":"heartbeat","node_id":"${id}","seq":${i + 1},"ts":"${ts}","v":1}`
  );
}

async function writeFile(file) {
  const out = createWriteStream(file);
  for (let i = 0; i < LINES; i += 2000) {
    const chunk = [];
    for (let j = i; j < Math.min(LINES, i + 2000); j++) chunk.push(heartbeatLine(j));
    if (!out.write(chunk.join('\n') + '\n')) await once(out, 'drain');
  }
  out.end();
  await once(out, 'finish');
}

async function timed(count) {
  const t0 = process.hrtime.bigint();
  const n = await count();
  if (n !== LINES) throw new Error(`read ${n} lines, expected ${LINES}`);
  return Number(process.hrtime.bigint() - t0) / 1e9;
}

export async function run({ log = console.error } = {}) {
  const { LineSource } = await dist('lib/journal/index.js');
  const ndjson = (await import('ndjson')).default;
  const dir = mkdtempSync(join(tmpdir(), 'vm-bench-split-'));
  try {
    const file = join(dir, 'heartbeats.jsonl');
    await writeFile(file);
    const mib = statSync(file).size / 2 ** 20;
    log(`line-split: ${LINES} lines, ${round(mib, 0)} MiB`);
    const readers = {
      ours: async () => {
        const src = new LineSource(file);
        let n = 0;
        for (let batch = await src.nextBatch(); batch; batch = await src.nextBatch()) for (const l of batch) n += JSON.parse(l.bytes.toString('utf8')).v;
        return n;
      },
      ndjson: async () => {
        let n = 0;
        const s = createReadStream(file).pipe(ndjson.parse());
        for await (const obj of s) n += obj.v;
        return n;
      },
      readline: async () => {
        let n = 0;
        for await (const line of createInterface({ input: createReadStream(file), crlfDelay: Infinity })) n += JSON.parse(line).v;
        return n;
      },
    };
    const best = { ours: Infinity, ndjson: Infinity, readline: Infinity };
    for (let r = 0; r < ROUNDS; r++) for (const [k, f] of Object.entries(readers)) best[k] = Math.min(best[k], await timed(f));
    const rate = (s) => Math.round(LINES / s);
    return [
      { name: `our splitter + JSON.parse (${LINES.toLocaleString('en-US')} lines, ${round(mib, 0)} MiB)`, value: rate(best.ours), unit: 'lines/s', baseline: rate(best.ndjson), ratio: round(best.ndjson / best.ours, 2), note: 'baseline: ndjson.parse()' },
      { name: 'our splitter, MiB/s', value: round(mib / best.ours, 1), unit: 'MiB/s', baseline: round(mib / best.ndjson, 1), ratio: round(best.ndjson / best.ours, 2), note: 'baseline: ndjson' },
      { name: 'readline + JSON.parse', value: rate(best.readline), unit: 'lines/s', baseline: rate(best.ndjson), ratio: round(best.ndjson / best.readline, 2), note: 'baseline: ndjson.parse()' },
    ];
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  for (const r of await run()) console.log(`${r.name}: ${r.value} ${r.unit}${r.baseline !== undefined ? ` (baseline ${r.baseline}, ratio ${r.ratio})` : ''}`);
}

#!/usr/bin/env node
/**
 * `npm run bench`: runs every benchmark module (each exports `run()` → rows {name, value, unit, baseline?, ratio?,
 * note?, target?}), each in its own child process with a time budget inside a total budget, prints one table with
 * the machine description and writes bench/REPORT.md. A module that is missing, fails or runs out of time is
 * reported as "not available" with the reason; the others still run.
 *
 * Targets: a row's `target` is `<≥|≤> number [unit]`. With a unit ('≤ 50 ms', '≤ 64 MB') it is checked against the
 * row's value, and the unit must be the row's (KB = KiB, MB = MiB); a bare number or × ('≥ 0.30', '≤ 0.5×') is a
 * ratio target, checked against the row's ratio (or its value when the row's unit is ×). The report shows the
 * target and a mark: pass, FAIL, or n/a with the reason (value not a number, units differ). The rule is
 * bench/lib/targets.mjs (checkTarget), tested in test/bench-targets.test.ts; docs/BENCHMARKS.md describes it.
 *
 *   node bench/run.mjs                 # all modules (after `npm run build`)
 *   node bench/run.mjs ingest replay   # a subset
 *   VAULTMESH_BENCH_TOTAL_SECS=1500    # overall budget (default 1500: the sum of the module budgets fits)
 */
import { spawn } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { BENCH_ENV } from './lib/center-process.mjs';
import { loadAverage, machineDescription } from './lib/proc.mjs';
import { checkTarget, targetCell } from './lib/targets.mjs';

const SELF = fileURLToPath(import.meta.url);
const BENCH = resolve(SELF, '..');

/**
 * Order matters: the fleet-level figures of issue 9 first, the large-file ones last. `env` shrinks a module where
 * its default would not fit the total on a 2-core machine (the shrink is printed in the report). One module a
 * line, so modules added on different branches merge as separate lines.
 */
export const MODULES = [
  { id: 'ingest', file: 'ingest.mjs', budgetS: 100, what: 'signed durable heartbeats vs bare Hono; Ed25519 backends' },
  { id: 'replay', file: 'replay.mjs', budgetS: 150, what: '1M-line replay vs readline + JSON.parse; RSS; start-up sweeps after a downtime' },
  { id: 'line-split', file: 'line-split.mjs', budgetS: 45, env: { VAULTMESH_BENCH_SPLIT_LINES: '200000' }, what: 'our JSONL splitter vs ndjson and readline' },
  { id: 'sse-fanout', file: 'sse-fanout.mjs', budgetS: 60, what: '1,000 SSE clients: append → receipt' },
  { id: 'fleet', file: 'fleet.mjs', budgetS: 120, what: '10,000 simulated agents at 1× and 3× the 30 s interval' },
  { id: 'ledger', file: 'ledger.mjs', budgetS: 150, env: { VAULTMESH_BENCH_HEADS: '20000' }, what: 'RFC 6962 ledger vs raw SHA-256 and merkletreejs' },
  { id: 'events', file: 'events.mjs', budgetS: 90, env: { VAULTMESH_BENCH_EVENTS: '500000' }, what: 'GET/POST /api/events over a large events.jsonl' },
  { id: 'commands', file: 'commands.mjs', budgetS: 60, what: 'signed command round trip' },
  { id: 'approvals', file: 'approvals.mjs', budgetS: 45, what: 'm-of-n approval: proposed + 2 approvals vs signed at once; concurrent approvals' },
  { id: 'replicas', file: 'replicas.mjs', budgetS: 90, what: 'PostgreSQL: commit latency on 3 replicas vs 1 center; tail lag between replicas' },
  { id: 'console', file: 'console.mjs', budgetS: 45, what: 'console at 1,000 and 10,000 nodes: first page, size, CPU per live client' },
  { id: 'postgres', file: 'postgres.mjs', budgetS: 300, env: { VAULTMESH_BENCH_PG_REPLAY_LINES: '200000', VAULTMESH_BENCH_PG_REPLICAS: '3' }, what: 'PostgreSQL store vs JSONL: ingest on 1 and 3 replicas, bytes per envelope, start-up replay' },
  { id: 'logs', file: 'logs.mjs', budgetS: 360, env: { VAULTMESH_BENCH_MB: '1024', VAULTMESH_BENCH_SMALL_MB: '64' }, what: 'vaultmesh logs vs jq at 64 MB and 1 GB; peak RSS' },
  { id: 'cli', file: 'cli.mjs', budgetS: 100, what: 'vaultmesh CLI start-up: lazy command modules vs every module loaded' },
  { id: 'outages', file: 'outages.mjs', budgetS: 30, what: 'outage sweep (offline / rejoin) vs the attention sweep at 10,000 nodes' },
  { id: 'maintenance', file: 'maintenance.mjs', budgetS: 90, what: 'maintenance windows: fleet status pass and envelope apply with 20 open windows vs none' },
  { id: 'leader-failover', file: 'leader-failover.mjs', budgetS: 150, what: 'PostgreSQL leader failover: kill -9 → new leader, → its first head' },
  {
    id: 'startup',
    file: 'startup.mjs',
    budgetS: 240,
    // A quarter of the 1.4M-envelope log fits the total; `node bench/startup.mjs` alone runs the full size.
    env: { VAULTMESH_BENCH_STARTUP_HEARTBEATS: '250000', VAULTMESH_BENCH_STARTUP_SCANS: '50000', VAULTMESH_BENCH_STARTUP_COMMANDS: '50000', VAULTMESH_BENCH_STARTUP_NODES: '10000', VAULTMESH_BENCH_STARTUP_TAIL: '5000' },
    what: 'center start-up from the state snapshot vs full replay; RSS; snapshot pause',
  },
  { id: 'center-key', file: 'center-key.mjs', budgetS: 30, what: 'center key rotation: heartbeat answer and attention check after 16 rotations; an agent taking the chain' },
  { id: 'snapshot-pause', file: 'snapshot-pause.mjs', budgetS: 150, env: { VAULTMESH_BENCH_STARTUP_HEARTBEATS: '250000', VAULTMESH_BENCH_STARTUP_SCANS: '50000', VAULTMESH_BENCH_STARTUP_COMMANDS: '50000', VAULTMESH_BENCH_STARTUP_NODES: '10000' }, what: 'state snapshot at 10,000 nodes under 1,000 hb/s: longest event-loop stall, ack p99; sliced vs one turn' },
];

/** Total budget (s) when VAULTMESH_BENCH_TOTAL_SECS is not set: every module's budget plus room for the ones being added. */
export const DEFAULT_TOTAL_SECS = 1500;

function runModule(mod, budgetMs) {
  return new Promise((res) => {
    const file = join(BENCH, mod.file);
    if (!existsSync(file)) return res({ error: `not available: bench/${mod.file} does not exist` });
    // Every module's centers measure capacity: abuse limits off (one generator on 127.0.0.1), see BENCH_ENV.
    const child = spawn(process.execPath, [SELF, '--module', file], { env: { ...process.env, ...BENCH_ENV, ...mod.env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    let timedOut = false;
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => {
      err += d;
      process.stderr.write(`  [${mod.id}] ${d}`.replace(/\n(?!$)/g, `\n  [${mod.id}] `));
    });
    const t = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, budgetMs);
    child.on('exit', (code) => {
      clearTimeout(t);
      const line = out.split('\n').find((l) => l.startsWith('ROWS '));
      if (line) return res({ rows: JSON.parse(line.slice(5)) });
      if (timedOut) return res({ error: `not available: exceeded its ${Math.round(budgetMs / 1000)} s budget` });
      // The message, not the last stack frame: the first line that is not a stack frame (or log noise).
      const lines = err.trim().split('\n');
      const message = lines.find((l) => /Error|error:/.test(l) && !/^\s+at /.test(l)) ?? lines.find((l) => !/^\s+at /.test(l)) ?? '';
      res({ error: `not available: exited with ${code}: ${message.trim().slice(0, 300)}` });
    });
  });
}

/** Child side: imports one module, checks it exports run(), prints its rows as one JSON line. */
async function moduleChild(file) {
  const mod = await import(pathToFileURL(file).href);
  if (typeof mod.run !== 'function') throw new Error(`${file} does not export run()`);
  const rows = await mod.run({ log: (m) => console.error(typeof m === 'string' ? m : JSON.stringify(m)) });
  if (!Array.isArray(rows)) throw new Error(`${file}: run() did not return rows`);
  process.stdout.write(`ROWS ${JSON.stringify(rows)}\n`);
  process.exit(0); // a module may leave sockets or timers behind
}

const fmt = (v) => (v === undefined || v === null ? '' : typeof v === 'number' ? (Math.abs(v) >= 1000 ? Math.round(v).toLocaleString('en-US') : String(v)) : String(v));
const esc = (s) => fmt(s).replace(/\|/g, '\\|');

function markdown(machine, results, meta) {
  const lines = [];
  lines.push('# Benchmark report', '');
  lines.push(`Generated by \`npm run bench\` (bench/run.mjs) on ${meta.date}; total ${meta.totalS} s.`, '');
  lines.push('## Machine', '');
  lines.push(`- CPU: ${machine.cpu}, ${machine.cores} cores; RAM ${machine.ramGb} GiB; ${machine.platform}; Node ${machine.node}`);
  lines.push(`- Load average at start: ${machine.load}; at end: ${meta.loadEnd}`);
  lines.push('');
  // What the load said when the run started: the report must not call a quiet run busy, nor a busy one quiet.
  const startLoad = Number.parseFloat(machine.load);
  const busy = !(startLoad < machine.cores / 2);
  lines.push(
    busy
      ? `> **Noise.** Other work was running when this run started (load ${machine.load} on ${machine.cores} cores: above ${machine.cores / 2}, processes compete for the cores the benchmarks use).`
      : `> **Noise.** The machine was otherwise idle when this run started (load ${machine.load} on ${machine.cores} cores); each benchmark's own load generator still shares the cores with the center it measures.`,
    '> Absolute numbers vary between runs (by ±50 % or more on a busy machine); the **ratios**, measured against a',
    '> baseline in the same run and usually interleaved with it, are the meaningful part. Each module runs in its own',
    '> process with a time budget; a module that failed or ran out of time is listed as "not available".',
    '',
  );
  for (const { mod, rows, error, seconds } of results) {
    lines.push(`## ${mod.id} — ${mod.what}`, '');
    const shrink = mod.env ? ` Run with ${Object.entries(mod.env).map(([k, v]) => `\`${k}=${v}\``).join(', ')} to fit the total budget.` : '';
    lines.push(`bench/${mod.file}, ${seconds} s.${shrink}`, '');
    if (error) {
      lines.push(`**${error}**`, '');
      continue;
    }
    lines.push('| figure | value | unit | baseline | ratio | target | met | note |', '|---|--:|---|--:|--:|---|---|---|');
    for (const r of rows) {
      const c = checkTarget(r);
      const met = c ? `${c.mark}${c.against === 'ratio' ? ' (ratio)' : ''}${c.reason ? ` (${c.reason})` : ''}` : '';
      lines.push(`| ${esc(r.name)} | ${esc(r.value)} | ${esc(r.unit)} | ${esc(r.baseline)} | ${esc(r.ratio)} | ${esc(r.target)} | ${esc(met)} | ${esc(r.note)} |`);
    }
    lines.push('');
  }
  return lines.join('\n');
}

async function main(selected) {
  const machine = machineDescription();
  const totalMs = Number(process.env.VAULTMESH_BENCH_TOTAL_SECS ?? DEFAULT_TOTAL_SECS) * 1000;
  const t0 = Date.now();
  console.log(`machine: ${machine.cpu}, ${machine.cores} cores, ${machine.ramGb} GiB RAM, ${machine.platform}, node ${machine.node}, load ${machine.load}`);
  const results = [];
  for (const mod of MODULES.filter((m) => !selected.length || selected.includes(m.id))) {
    const left = totalMs - (Date.now() - t0);
    const s0 = Date.now();
    let r;
    if (left < 10_000) r = { error: `not available: the ${Math.round(totalMs / 1000)} s total was used up before it could run` };
    else {
      console.log(`running ${mod.id} (budget ${Math.round(Math.min(mod.budgetS * 1000, left) / 1000)} s)…`);
      r = await runModule(mod, Math.min(mod.budgetS * 1000, left));
    }
    results.push({ mod, ...r, seconds: Math.round((Date.now() - s0) / 1000) });
    if (r.error) console.log(`  ${mod.id}: ${r.error}`);
    else for (const row of r.rows) console.log(`  ${row.name}: ${fmt(row.value)} ${row.unit}${row.baseline !== undefined ? `  (baseline ${fmt(row.baseline)}${row.ratio !== undefined ? `, ratio ${row.ratio}` : ''})` : ''}${row.target !== undefined ? `  [target ${targetCell(row)}]` : ''}`);
  }
  const meta = { date: new Date().toISOString(), totalS: Math.round((Date.now() - t0) / 1000), loadEnd: loadAverage() };
  const md = markdown(machine, results, meta);
  if (!selected.length || process.env.VAULTMESH_BENCH_WRITE_REPORT === '1') {
    writeFileSync(join(BENCH, 'REPORT.md'), md + '\n');
    console.log(`wrote bench/REPORT.md (${meta.totalS} s)`);
  } else console.log(md);
}

if (process.argv[2] === '--module') {
  moduleChild(process.argv[3]).catch((err) => {
    console.error(err?.stack ?? String(err));
    process.exit(1);
  });
} else if (process.argv[1] && resolve(process.argv[1]) === SELF) {
  main(process.argv.slice(2)).catch((err) => {
    console.error(err);
    process.exitCode = 1;
  });
}

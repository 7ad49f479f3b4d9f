#!/usr/bin/env node
/**
 * Benchmark for `vaultmesh logs`: on a generated ~1 GB journal set (and a 64 MB one, to show memory does not grow
 * with file size) time `logs stats --json` and `logs view --kind scan --node X --json` and their peak RSS,
 * each against jq doing the same filter / aggregation in the same run. Targets: peak RSS ≤ 64 MB at both sizes, and
 * the same peak at 1 GB as at 64 MB (ratio ≤ 1.15).
 *
 *   node bench/logs.mjs            # prints a table; VAULTMESH_BENCH_MB=1024 sets the big size,
 *                                  # VAULTMESH_BENCH_SMALL_MB=64 the small one
 *   import { run } from './bench/logs.mjs'   # rows { name, value, unit, baseline?, ratio? } for an aggregator
 *
 * Journals go to bench/out/ (git-ignored) and are reused when already there. Everything is bounded: generation is a
 * few seconds, and each jq run is cut off at what is left of a 225 s budget (its ratio is then a lower bound).
 */
import { spawnSync } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const OUT = join(ROOT, 'bench/out');
// A node that has scans in the generated set (scans go to seq % 100 in 90..94, nodes to seq % 1000).
const NODE_X = 'node-0091';
const NODES = 1000;
const FILES = ['heartbeats.jsonl', 'sovereign-scans.jsonl', 'commands.jsonl', 'events.jsonl'];
const CMD_TIMEOUT_MS = 150_000;
// The whole run stays under 4 minutes: jq's stats reduce over 1 GB alone would take ~3 minutes here, so each jq run
// gets at most what is left of this budget, and a cut-off run reports its ratio as a lower bound.
const BUDGET_MS = 225_000;

// ---------------------------------------------------------------------------------------------------------------
// Journal generation: canonical (sorted-key) envelope lines written in seq order across the four files, with big
// buffered writes. Deterministic (no randomness), so reruns produce the same set.

const pad = (n, w) => String(n).padStart(w, '0');
const nodeName = (i) => `node-${pad(i, 4)}`;
const SEVS = ['critical', 'high', 'medium', 'low', 'info'];
const CHECKS = ['ssh_root_login', 'firewall_default', 'pending_updates', 'world_writable', 'suid_binaries', 'ntp_sync', 'auditd', 'kernel_params'];

function heartbeat(seq, ts, node) {
  const x = seq % 97;
  return `{"author":"node:${node}","body":{"agent_version":"0.1.0","hostname":"${node}.fleet.internal","metrics":{"cpu_pct":${x % 100}.${seq % 10},"disk_used_pct":${40 + (x % 50)}.5,"load1":${(x % 8) / 4},"mem_used_pct":${30 + (x % 60)}.25,"net_rx_bytes":${seq * 1337},"net_tx_bytes":${seq * 733},"uptime_s":${seq * 30}},"os_profile":"debian-12"},"id":"hb-${seq}","kind":"heartbeat","node_id":"${node}","seq":${seq},"ts":"${ts}","v":1}`;
}

function scan(seq, ts, node) {
  const n = 3 + (seq % 6);
  const findings = [];
  for (let i = 0; i < n; i++) {
    const check = CHECKS[(seq + i) % CHECKS.length];
    findings.push(`{"check":"${check}","detail":"check ${check} reported a deviation from the ${node} baseline profile","evidence":"/etc/${check}.conf line ${i + 1}: value differs from expected","severity":"${SEVS[(seq + i) % 5]}","title":"${check.replace(/_/g, ' ')} out of policy"}`);
  }
  return `{"author":"node:${node}","body":{"findings":[${findings.join(',')}],"scan_id":"scan-${seq}","summary":"${n} findings"},"id":"scan-${seq}","kind":"scan","node_id":"${node}","seq":${seq},"ts":"${ts}","v":1}`;
}

function command(seq, ts, node) {
  return `{"author":"operator:alice","body":{"signed":{"key_id":"ab12cd34ef56ab12","payload":{"action":"restart-agent","args":{},"expires_at":"${ts}","id":"cmd-${seq}","issued_at":"${ts}","key_id":"ab12cd34ef56ab12","node_id":"${node}","nonce":"${pad(seq, 32)}"},"signature":"${'ab'.repeat(64)}"}},"id":"cmd-${seq}","kind":"command","node_id":"${node}","seq":${seq},"ts":"${ts}","v":1}`;
}

function receipt(seq, ts, node) {
  const status = ['succeeded', 'succeeded', 'succeeded', 'failed', 'rejected', 'expired'][seq % 6];
  return `{"author":"node:${node}","body":{"command_id":"cmd-${seq - 1}","finished_at":"${ts}","status":"${status}"},"id":"rcpt-${seq}","kind":"receipt","node_id":"${node}","seq":${seq},"ts":"${ts}","v":1}`;
}

function event(seq, ts, node) {
  return seq % 2
    ? `{"author":"bot:watchdog","body":{"severity":"${SEVS[seq % 5]}","title":"disk pressure on ${node}"},"id":"inc-${seq}","kind":"incident","node_id":"${node}","seq":${seq},"ts":"${ts}","v":1}`
    : `{"author":"operator:bob","body":{"text":"looked at ${node}, nothing to do"},"id":"note-${seq}","kind":"note","node_id":"${node}","seq":${seq},"ts":"${ts}","v":1}`;
}

/** Writes a journal set of about `targetBytes` into `dir` (via a temp dir, so an interrupted run is not reused). */
export function generate(dir, targetBytes) {
  const marker = join(dir, '.complete');
  if (existsSync(marker) && readFileSync(marker, 'utf8') === String(targetBytes)) return;
  const tmp = `${dir}.tmp`;
  rmSync(tmp, { recursive: true, force: true });
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true });
  const fds = FILES.map((f) => openSync(join(tmp, f), 'w'));
  const parts = FILES.map(() => []);
  const sizes = FILES.map(() => 0);
  const FLUSH = 8 << 20;
  const flush = (i) => {
    writeSync(fds[i], parts[i].join(''));
    parts[i] = [];
    sizes[i] = 0;
  };
  const start = Date.parse('2026-11-01T00:00:00Z');
  let written = 0;
  // 30 s heartbeats from 1000 nodes = 33 envelopes per second of fleet time.
  for (let seq = 1; written < targetBytes; seq++) {
    const node = nodeName(seq % NODES);
    const ts = new Date(start + seq * 30).toISOString();
    const r = seq % 100;
    let i, line;
    if (r < 90) [i, line] = [0, heartbeat(seq, ts, node)];
    else if (r < 95) [i, line] = [1, scan(seq, ts, node)];
    else if (r === 95) [i, line] = [2, command(seq, ts, node)];
    else if (r === 96) [i, line] = [2, receipt(seq, ts, node)];
    else [i, line] = [3, event(seq, ts, node)];
    parts[i].push(line, '\n');
    sizes[i] += line.length + 1;
    written += line.length + 1;
    if (sizes[i] >= FLUSH) flush(i);
  }
  FILES.forEach((_, i) => flush(i));
  fds.forEach((fd) => closeSync(fd));
  writeFileSync(join(tmp, '.complete'), String(targetBytes));
  renameSync(tmp, dir);
}

// ---------------------------------------------------------------------------------------------------------------
// Measuring: wall time around the child, peak RSS from GNU time -v (or VmHWM sampled from /proc as a fallback).

const hasGnuTime = existsSync('/usr/bin/time') && spawnSync('/usr/bin/time', ['-v', 'true'], { encoding: 'utf8' }).stderr?.includes('Maximum resident');

const hasTimeout = spawnSync('timeout', ['1', 'true']).status === 0;

function measure(argv, { cwd = ROOT, timeoutMs = CMD_TIMEOUT_MS } = {}) {
  const out = openSync('/dev/null', 'w');
  try {
    // coreutils timeout sits innermost so it is the measured program that gets killed, not just GNU time.
    const limited = hasTimeout ? ['timeout', String(Math.max(1, Math.floor(timeoutMs / 1000))), ...argv] : argv;
    const full = hasGnuTime ? ['/usr/bin/time', '-v', ...limited] : limited;
    const t0 = process.hrtime.bigint();
    const r = spawnSync(full[0], full.slice(1), { cwd, stdio: ['ignore', out, 'pipe'], encoding: 'utf8', timeout: timeoutMs + 10_000, maxBuffer: 1 << 24 });
    const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
    const m = /Maximum resident set size \(kbytes\): (\d+)/.exec(r.stderr ?? '');
    const rssMb = m ? Number(m[1]) / 1024 : NaN;
    if (r.signal || r.status === 124) return { seconds, rssMb, timedOut: true };
    if (r.status !== 0) throw new Error(`${argv.join(' ')} exited ${r.status}: ${(r.stderr ?? '').slice(-500)}`);
    return { seconds, rssMb, timedOut: false };
  } finally {
    closeSync(out);
  }
}

function ensureJq() {
  if (spawnSync('jq', ['--version']).status === 0) return true;
  // Guarded: only when apt-get exists and we may use it (root, or sudo without a password).
  const sudo = process.getuid?.() === 0 ? [] : ['sudo', '-n'];
  if (spawnSync('which', ['apt-get']).status !== 0) return false;
  spawnSync(sudo[0] ?? 'apt-get', [...sudo.slice(1), ...(sudo.length ? ['apt-get'] : []), 'install', '-y', '-qq', 'jq'], { stdio: 'inherit', timeout: 120_000 });
  return spawnSync('jq', ['--version']).status === 0;
}

/** The built CLI (dist/cli/main.js); compiled first when missing. */
function cliEntry() {
  const main = join(ROOT, 'dist/cli/main.js');
  if (!existsSync(main) || !existsSync(join(ROOT, 'dist/cli/commands/logs.js'))) {
    spawnSync(process.execPath, [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', join(ROOT, 'tsconfig.json')], { cwd: ROOT, stdio: 'ignore' });
  }
  if (!existsSync(main)) throw new Error('dist/cli/main.js is missing after tsc; run npm run build');
  return main;
}

// Counts per node and kind: the core of `logs stats` (which also does first/last seen, heartbeat gaps, findings
// and receipts on top). The simplest reduce is the fastest one in jq.
const JQ_STATS = 'reduce inputs as $e ({}; .[$e.node_id // "-"][$e.kind] += 1)';

export async function run({ bigMb = Number(process.env.VAULTMESH_BENCH_MB ?? 1024), smallMb = Number(process.env.VAULTMESH_BENCH_SMALL_MB ?? 64), log = () => {} } = {}) {
  mkdirSync(OUT, { recursive: true });
  const started = Date.now();
  const haveJq = ensureJq();
  const jqLeftMs = () => Math.min(CMD_TIMEOUT_MS, BUDGET_MS - (Date.now() - started));
  const jqInTime = () => haveJq && jqLeftMs() > 5_000;
  const entry = cliEntry();
  const rows = [];
  const sets = [
    { label: `${smallMb} MB`, dir: join(OUT, `logs-${smallMb}mb`), bytes: smallMb << 20 },
    { label: `${bigMb} MB`, dir: join(OUT, `logs-${bigMb}mb`), bytes: bigMb << 20 },
  ];
  const rss = {};
  for (const set of sets) {
    const t0 = Date.now();
    generate(set.dir, set.bytes);
    const actual = FILES.reduce((s, f) => s + statSync(join(set.dir, f)).size, 0);
    log(`journal set ${set.label}: ${(actual / 2 ** 20).toFixed(0)} MiB ready in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    const files = FILES.map((f) => join(set.dir, f));
    // The view first: its jq baselines are cheap; jq's stats reduce is the one that may hit the budget.
    const cases = [
      {
        name: `logs view --kind scan --node ${NODE_X} --json`,
        ours: [process.execPath, entry, 'logs', 'view', '--kind', 'scan', '--node', NODE_X, '--json', '--dir', set.dir],
        jq: ['jq', '-c', `select(.kind=="scan" and .node_id=="${NODE_X}")`, ...files],
        // A jq user who knows the journal layout reads only the scan journal: the stricter baseline.
        jqNarrow: ['jq', '-c', `select(.kind=="scan" and .node_id=="${NODE_X}")`, join(set.dir, 'sovereign-scans.jsonl')],
      },
      {
        name: 'logs stats --json',
        ours: [process.execPath, entry, 'logs', 'stats', '--json', '--dir', set.dir],
        jq: ['jq', '-n', '-c', JQ_STATS, ...files],
      },
    ];
    for (const c of cases) {
      const ours = measure(c.ours);
      log(`  ${c.name}: ${ours.seconds.toFixed(2)} s, ${ours.rssMb.toFixed(0)} MB`);
      const jq = jqInTime() ? measure(c.jq, { timeoutMs: jqLeftMs() }) : undefined;
      if (jq) log(`  jq: ${jq.seconds.toFixed(2)} s${jq.timedOut ? ' (timed out: the ratio is a lower bound)' : ''}, ${jq.rssMb.toFixed(0)} MB`);
      else log('  jq: skipped (not installed, or past the time budget)');
      const ratio = (base, mine) => (base === undefined ? undefined : Math.round((base / mine) * 100) / 100);
      rows.push({
        name: `${c.name} @ ${set.label}: time`,
        value: round(ours.seconds),
        unit: 's',
        baseline: jq && round(jq.seconds),
        ratio: ratio(jq?.seconds, ours.seconds),
        ...(jq?.timedOut ? { lower_bound: true } : {}),
      });
      rows.push({ name: `${c.name} @ ${set.label}: set size / time`, value: Math.round(actual / 2 ** 20 / ours.seconds), unit: 'MB/s' });
      rows.push({ name: `${c.name} @ ${set.label}: peak RSS`, value: round(ours.rssMb), unit: 'MB', baseline: jq && round(jq.rssMb), ratio: ratio(jq?.rssMb, ours.rssMb), target: '≤ 64 MB' });
      if (c.jqNarrow && jqInTime()) {
        const narrow = measure(c.jqNarrow, { timeoutMs: jqLeftMs() });
        log(`  jq over sovereign-scans.jsonl only: ${narrow.seconds.toFixed(2)} s`);
        rows.push({ name: `${c.name} @ ${set.label}: time vs jq on the scan journal only`, value: round(ours.seconds), unit: 's', baseline: round(narrow.seconds), ratio: ratio(narrow.seconds, ours.seconds) });
      }
      (rss[c.name] ??= []).push(ours.rssMb);
    }
  }
  for (const [name, [small, big]] of Object.entries(rss)) {
    // Flat memory: the big set is 16x the small one; the RSS ratio should stay near 1.
    rows.push({ name: `${name}: peak RSS ${sets[1].label} / ${sets[0].label}`, value: round(big / small), unit: 'x', target: '≤ 1.15' });
  }
  return rows;
}

const round = (n) => Math.round(n * 100) / 100;

function printTable(rows) {
  const head = ['benchmark', 'value', 'jq', 'speed-up / ratio'];
  const body = rows.map((r) => [r.name, `${r.value} ${r.unit}`, r.baseline === undefined ? '' : `${r.baseline} ${r.unit}`, r.ratio === undefined ? '' : `${r.lower_bound ? '>= ' : ''}${r.ratio}x`]);
  const w = head.map((_, i) => Math.max(...[head, ...body].map((r) => r[i].length)));
  for (const r of [head, w.map((n) => '-'.repeat(n)), ...body]) console.log(r.map((c, i) => (i ? c.padStart(w[i]) : c.padEnd(w[i]))).join('  '));
  console.log('\nratio = jq / vaultmesh (time: >1 means faster than jq; RSS: >1 means less memory than jq)');
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const t0 = Date.now();
  const rows = await run({ log: (m) => console.error(m) });
  printTable(rows);
  console.error(`total ${((Date.now() - t0) / 1000).toFixed(0)} s`);
}

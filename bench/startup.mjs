#!/usr/bin/env node
/**
 * Start-up benchmark (run `npm run build` first; it imports dist/): the real center (vaultmesh-cc) starting on a
 * log of 10,000 enrolled nodes, 1,000,000 heartbeats, 200,000 scans and 200,000 command envelopes (50,000 signed
 * commands, each issued → delivered → receipt → completed), from its state snapshot vs a full replay, in the same run.
 *
 * - The journals (canonical envelopes, real Ed25519 signatures on commands and receipts) are generated once into
 *   bench/out/startup-<…>/ (gitignored) and reused; each run works on a copy.
 * - A first center replays the log and, on a clean stop, writes its snapshot (its write pause is reported). Then a
 *   tail of `TAIL` heartbeats is appended behind the snapshot, and two centers start on the same log: with
 *   --snapshot-off (full replay), then with the snapshot (snapshot + tail). Ratio = snapshot start / full start
 *   (target ≤ 0.20), both "listening" times measured from spawn. RSS of each after start-up (target ≤ 300 MB).
 * - The tail the snapshot start replays is more than the appended heartbeats: the full-replay center, once
 *   listening, journals what its outage sweep finds before it is stopped (at run.mjs's size: 5,000 `rejoin` for the
 *   nodes the appended heartbeats bring back, then 5,000 `offline`, since those heartbeats are hours old too). A crash after the last snapshot leaves such entries too, so they stay, and the row
 *   names the tail's real length (the snapshot center's own "replayed N envelopes" line).
 *
 *   node bench/startup.mjs                          # prints a table
 *   import { run } from './bench/startup.mjs'       # rows
 * Bounded: each center is killed after 240 s. VAULTMESH_BENCH_STARTUP_HEARTBEATS (default 1000000),
 * VAULTMESH_BENCH_STARTUP_SCANS (200000), VAULTMESH_BENCH_STARTUP_COMMANDS (200000 envelopes),
 * VAULTMESH_BENCH_STARTUP_NODES (10000), VAULTMESH_BENCH_STARTUP_TAIL (20000) shrink it.
 */
import { createWriteStream, existsSync, mkdirSync, renameSync, rmSync, cpSync, appendFileSync, statSync } from 'node:fs';
import { once } from 'node:events';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ROOT, dist, startCenterProcess } from './lib/center-process.mjs';
import { round } from './lib/stats.mjs';
import { cpuSecondsOf } from './lib/proc.mjs';
import { heartbeatLineAt, nodeId } from './lib/replay-log.mjs';

const SELF = fileURLToPath(import.meta.url);
const HEARTBEATS = Number(process.env.VAULTMESH_BENCH_STARTUP_HEARTBEATS ?? 1_000_000);
const SCANS = Number(process.env.VAULTMESH_BENCH_STARTUP_SCANS ?? 200_000);
const COMMANDS = Math.floor(Number(process.env.VAULTMESH_BENCH_STARTUP_COMMANDS ?? 200_000) / 4) * 4;
const NODES = Number(process.env.VAULTMESH_BENCH_STARTUP_NODES ?? 10_000);
const TAIL = Number(process.env.VAULTMESH_BENCH_STARTUP_TAIL ?? 20_000);
export const OUT = join(ROOT, 'bench', 'out', `startup-${HEARTBEATS}-${SCANS}-${COMMANDS}-${NODES}`);
const T0 = Date.UTC(2025, 0, 1);
const CENTER_MS = 240_000;
// The centers must not add envelopes of their own: no scheduled scans, no attention sweeps during the run.
const QUIET = { VAULTMESH_ORCHESTRATOR_TICK_SECS: '0', VAULTMESH_ATTENTION_CHECK_SECS: '3600', VAULTMESH_SNAPSHOT_SECS: '0', VAULTMESH_SNAPSHOT_ENTRIES: '0' };

const iso = (ms) => new Date(ms).toISOString();

const heartbeatLine = (seq, i, tsMs) => heartbeatLineAt(seq, i, NODES, iso(tsMs));

class Out {
  constructor(file) {
    this.s = createWriteStream(file);
    this.buf = [];
  }
  async line(l) {
    this.buf.push(l);
    if (this.buf.length >= 2000) await this.flush();
  }
  async flush() {
    if (!this.buf.length) return;
    const ok = this.s.write(this.buf.join('\n') + '\n');
    this.buf = [];
    if (!ok) await once(this.s, 'drain');
  }
  async end() {
    await this.flush();
    this.s.end();
    await once(this.s, 'finish');
  }
}

/** Generates the journal set once (in a temp dir renamed into place, so an interrupted run is not reused). */
export async function ensureJournals(log) {
  if (existsSync(join(OUT, 'done'))) return false;
  const { canonicalJson } = await dist('protocol/canonical-json.js');
  const { generateKeyPair } = await dist('protocol/keys.js');
  const { signCommand, signReceipt } = await dist('protocol/command.js');
  const { summarize } = await dist('protocol/scan.js');
  const sample = heartbeatLine(NODES + 1, 12345, T0);
  if (canonicalJson(JSON.parse(sample)) !== sample) throw new Error('heartbeatLine is not canonical JSON');
  const tmp = `${OUT}.tmp-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true });
  const centerKey = generateKeyPair();
  const nodeKey = generateKeyPair(); // one for all nodes: replay verifies no signature
  const events = new Out(join(tmp, 'events.jsonl'));
  const hbs = new Out(join(tmp, 'heartbeats.jsonl'));
  const scans = new Out(join(tmp, 'sovereign-scans.jsonl'));
  const cmds = new Out(join(tmp, 'commands.jsonl'));
  const enrollTs = iso(T0 - 3_600_000);
  let seq = 0;
  for (let i = 0; i < NODES; i++) {
    await events.line(canonicalJson({ v: 1, id: `enroll-${i}`, seq: ++seq, ts: enrollTs, kind: 'enrollment', node_id: nodeId(i), author: `node:${nodeId(i)}`, body: { action: 'request', token_id: 'bench', hostname: `${nodeId(i)}.example`, os_profile: 'debian', public_key: nodeKey.publicKeyHex, key_id: nodeKey.keyId, agent_version: '0.1.0', facts: {}, auto_approved: true } }));
  }
  const findings = [
    { check: 'ssh-root-login', severity: 'high', title: 'SSH permits root login', detail: 'PermitRootLogin yes in /etc/ssh/sshd_config', evidence: { file: '/etc/ssh/sshd_config', line: 42 } },
    { check: 'pkg-updates', severity: 'medium', title: '12 packages have security updates', detail: 'apt list --upgradable', evidence: { count: 12 } },
    { check: 'firewall', severity: 'info', title: 'nftables active', detail: 'ruleset loaded', evidence: {} },
  ];
  const summary = summarize(findings, { checks_run: 8, checks_failed: 0 });
  const total = HEARTBEATS + SCANS + COMMANDS;
  let h = 0;
  let s = 0;
  let c = 0;
  let cmd;
  for (let k = 0; k < total; k++) {
    // Spread evenly: each kind at its own rate through the log, as a live fleet writes them.
    const tsMs = T0 + Math.floor((k / total) * (HEARTBEATS / NODES) * 30_000);
    const fh = h < HEARTBEATS ? h / HEARTBEATS : Infinity;
    const fs = s < SCANS ? s / SCANS : Infinity;
    const fc = c < COMMANDS ? c / COMMANDS : Infinity;
    if (fh <= fs && fh <= fc) {
      await hbs.line(heartbeatLine(++seq, h++, tsMs));
    } else if (fs <= fc) {
      const n = nodeId(s % NODES);
      const body = { node_id: n, started_at: iso(tsMs - 2000), finished_at: iso(tsMs), agent_version: '0.1.0', findings, summary, trigger: 'schedule' };
      await scans.line(canonicalJson({ v: 1, id: `scan-${s}`, seq: ++seq, ts: iso(tsMs), kind: 'scan', node_id: n, author: `node:${n}`, body }));
      s++;
    } else {
      const phase = c % 4;
      const n = nodeId(Math.floor(c / 4) % NODES);
      const id = `cmd-${Math.floor(c / 4)}`;
      const ts = iso(tsMs);
      let env;
      if (phase === 0) {
        const payload = { v: 1, id, node_id: n, action: 'sovereign-scan', args: {}, nonce: (c.toString(16).padStart(8, '0') + 'ab'.repeat(12)).slice(0, 32), issued_at: ts, expires_at: iso(tsMs + 300_000), key_id: centerKey.keyId };
        cmd = signCommand(payload, centerKey);
        env = { v: 1, id: `ev-${id}-issued`, seq: ++seq, ts, kind: 'command', node_id: n, author: 'admin', body: { event: 'issued', command_id: id, status: 'queued', action: 'sovereign-scan', signed: cmd } };
      } else if (phase === 1) {
        env = { v: 1, id: `ev-${id}-delivered`, seq: ++seq, ts, kind: 'command', node_id: n, author: 'center', body: { event: 'delivered', command_id: id, status: 'delivered', attempt: 1 } };
      } else if (phase === 2) {
        const receipt = signReceipt({ v: 1, command_id: id, node_id: n, status: 'succeeded', exit_code: 0, started_at: ts, finished_at: ts, output: 'scan finished: 3 findings', truncated: false }, nodeKey);
        env = { v: 1, id: `rcpt-${id}`, seq: ++seq, ts, kind: 'receipt', node_id: n, author: `node:${n}`, body: receipt };
      } else {
        env = { v: 1, id: `ev-${id}-completed`, seq: ++seq, ts, kind: 'command', node_id: n, author: 'center', body: { event: 'completed', command_id: id, status: 'succeeded' } };
      }
      await cmds.line(canonicalJson(env));
      c++;
    }
  }
  for (const o of [events, hbs, scans, cmds]) await o.end();
  appendFileSync(join(tmp, 'done'), `${seq}\n`);
  mkdirSync(join(ROOT, 'bench', 'out'), { recursive: true });
  rmSync(OUT, { recursive: true, force: true });
  renameSync(tmp, OUT);
  log(`generated ${OUT} (${seq} envelopes)`);
  return true;
}

export const JOURNALS = ['events.jsonl', 'heartbeats.jsonl', 'sovereign-scans.jsonl', 'commands.jsonl'];

const snapshotLine = /wrote the state snapshot at seq (\d+) \(([\d.]+) MiB\): event loop held (\d+) ms, written in (\d+) ms/;

/** SIGTERM and wait for the clean stop (it writes the shutdown snapshot: allow it more than center-process's 10 s). */
async function stopCleanly(center) {
  if (center.child.exitCode !== null || center.child.signalCode !== null) return;
  center.child.kill('SIGTERM');
  const t = setTimeout(() => center.child.kill('SIGKILL'), 120_000);
  await center.exited;
  clearTimeout(t);
}

async function startTimed(dir, env) {
  const t0 = performance.now();
  const center = await startCenterProcess(dir, [], { maxMs: CENTER_MS, startMs: CENTER_MS - 5000, env: { ...QUIET, ...env } });
  const startMs = performance.now() - t0;
  // CPU (user + system, all threads) spawn → listening: steadier than wall time on a shared machine.
  const cpuS = cpuSecondsOf(center.child.pid);
  await new Promise((r) => setTimeout(r, 1000)); // let the post-start garbage go
  const mem = center.memory();
  return { center, startMs, cpuS, rssMb: mem.rssMb };
}

export async function run({ log = () => {} } = {}) {
  const rows = [];
  const t0 = performance.now();
  const generated = await ensureJournals(log);
  if (generated) rows.push({ name: `generate ${HEARTBEATS} heartbeats + ${SCANS} scans + ${COMMANDS} command envelopes (${NODES} nodes)`, value: Math.round(performance.now() - t0), unit: 'ms' });
  const dir = join(ROOT, 'bench', 'out', `startup-run-${process.pid}`);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(join(dir, 'logs'), { recursive: true });
  try {
    for (const f of JOURNALS) cpSync(join(OUT, f), join(dir, 'logs', f));
    const mib = JOURNALS.reduce((a, f) => a + statSync(join(OUT, f)).size, 0) / 2 ** 20;

    // 1. Full replay of the generated log; its clean stop writes the snapshot.
    const first = await startTimed(dir, { VAULTMESH_NEW_CENTER_KEY: '1' }); // a generated log has no state dir yet
    await stopCleanly(first.center);
    // The last snapshot line: a heartbeat rotation may have taken one before the shutdown's.
    const snap = [...first.center.output().matchAll(new RegExp(snapshotLine.source, 'g'))].at(-1);
    if (!snap) throw new Error(`the first center wrote no snapshot:\n${first.center.output().slice(-1500)}`);
    const snapSeq = Number(snap[1]);
    log(`first start ${first.startMs.toFixed(0)} ms, snapshot at seq ${snapSeq}: ${snap[2]} MiB, pause ${snap[3]} ms`);

    // 2. A tail behind the snapshot, as a center that crashed after its last snapshot would leave.
    const tail = [];
    for (let i = 0; i < TAIL; i++) tail.push(heartbeatLine(snapSeq + 1 + i, HEARTBEATS + i, T0 + (HEARTBEATS / NODES) * 30_000 + Math.floor(i / NODES) * 30_000));
    if (tail.length) appendFileSync(join(dir, 'logs', 'heartbeats.jsonl'), tail.join('\n') + '\n');

    // 3. Full replay, then snapshot + tail, on the same log.
    const full = await startTimed(dir, { VAULTMESH_SNAPSHOT_OFF: '1' });
    const fullReplayMs = full.center.replayMs;
    await stopCleanly(full.center);
    const fromSnap = await startTimed(dir, {});
    const out = fromSnap.center.output();
    const used = /loaded the state snapshot at seq (\d+) \(([\d.]+) MiB\) in (\d+) ms/.exec(out);
    const snapReplayMs = fromSnap.center.replayMs;
    const tailEntries = Number(/replayed (\d+) envelopes up to seq \d+ in \d+ ms \(after the state snapshot/.exec(out)?.[1] ?? NaN);
    await stopCleanly(fromSnap.center);
    if (!used) throw new Error(`the second center did not use the snapshot:\n${out.slice(-1500)}`);
    if (Number(used[1]) !== snapSeq) throw new Error(`the snapshot used is at seq ${used[1]}, not ${snapSeq}`);

    const ratio = fromSnap.startMs / full.startMs;
    rows.push({
      name: `center start-up, ${NODES} nodes, ${HEARTBEATS + SCANS + COMMANDS + NODES + TAIL} envelopes generated (${mib.toFixed(0)} MiB): snapshot + ${tailEntries}-entry tail vs full replay`,
      value: round(fromSnap.startMs / 1000, 2),
      unit: 's',
      baseline: round(full.startMs / 1000, 2),
      ratio: round(ratio, 3),
      target: '≤ 0.20',
      note: `spawn → listening; baseline: the same log with --snapshot-off (replay ${round(fullReplayMs, 0)} ms); with the snapshot: load ${used[3]} ms, tail replay ${round(snapReplayMs, 0)} ms of ${tailEntries} entries (${TAIL} appended heartbeats, ${tailEntries - TAIL} journaled by the centers after the snapshot)`,
    });
    rows.push({ name: 'center CPU spawn → listening (user + system), snapshot start vs full replay', value: round(fromSnap.cpuS, 2), unit: 's', baseline: round(full.cpuS, 2), ratio: round(fromSnap.cpuS / full.cpuS, 3), note: 'from /proc/<pid>/stat right after "listening"' });
    rows.push({ name: `center RSS after start-up from the snapshot (${NODES} nodes)`, value: round(fromSnap.rssMb, 0), unit: 'MB', baseline: round(full.rssMb, 0), target: '≤ 300 MB', note: 'baseline: RSS after a full replay of the same log' });
    rows.push({ name: 'state snapshot size', value: round(Number(snap[2]), 1), unit: 'MiB', note: `at seq ${snapSeq}; written in ${snap[4]} ms (hashing and writing yield to the event loop)` });
    rows.push({ name: 'state snapshot event-loop pause (longest turn of the capture)', value: Number(snap[3]), unit: 'ms', note: `the longest turn of the capture (it runs in slices; bench/snapshot-pause.mjs measures it under load), ${NODES} nodes` });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return rows;
}

if (process.argv[1] && resolve(process.argv[1]) === SELF) {
  const { printRows } = await import('./ingest.mjs');
  printRows(await run({ log: (m) => console.error(m) }));
}

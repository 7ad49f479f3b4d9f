#!/usr/bin/env node
/**
 * Benchmark for signed commands (run `npm run build` first; it imports dist/):
 *  - round trip issue → receipt for 100 `ping` commands across 10 real local agent processes (long-polling a real
 *    center on a real port): p50 / p99 / max, in 10 waves of 10 concurrent commands (one per agent)
 *  - the agent's verification cost per command (`verifyCommand`: schema + canonical JSON + Ed25519), with the
 *    @noble/ed25519 backend vs node:crypto side by side, plus the raw Ed25519 verify of each backend
 *
 *   node bench/commands.mjs                        # prints a table
 *   import { run } from './bench/commands.mjs'     # rows { name, value, unit, baseline?, ratio? }
 *
 * Bounded: ~15 s; agents are killed at the end (and on any error).
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { printTable } from './lib/stats.mjs';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const SELF = fileURLToPath(import.meta.url);
const AGENTS = Number(process.env.VAULTMESH_BENCH_AGENTS ?? 10);
const COMMANDS = Number(process.env.VAULTMESH_BENCH_COMMANDS ?? 100);
const dist = (p) => import(pathToFileURL(join(ROOT, 'dist', p)).href);
const ms = (t) => performance.now() - t;
const pct = (sorted, p) => sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];

async function until(what, fn, timeoutMs = 20_000) {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function roundTrip(log) {
  const { resolveCenterConfig } = await dist('command-center/config.js');
  const { startCenter } = await dist('command-center/center.js');
  const dir = mkdtempSync(join(tmpdir(), 'vm-bench-cmd-'));
  const quiet = { info() {}, warn() {}, error() {} };
  const center = await startCenter(resolveCenterConfig({ port: 0, logDir: join(dir, 'logs'), stateDir: join(dir, 'state'), autoApprove: true }, {}), { log: quiet });
  const procs = [];
  try {
    const token = readFileSync(center.adminTokenFile, 'utf8').trim();
    const api = async (method, path, body) => {
      const res = await fetch(center.url + path, { method, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, ...(body ? { body: JSON.stringify(body) } : {}) });
      return res.json();
    };
    const join_ = await api('POST', '/api/join-tokens', { uses: AGENTS });
    for (let i = 0; i < AGENTS; i++) {
      const id = `bench-${String(i).padStart(2, '0')}`;
      const p = spawn(process.execPath, [join(ROOT, 'dist/node-agent/main.js')], {
        env: {
          PATH: process.env.PATH,
          VAULTMESH_SETTINGS: join(dir, 'none.env'),
          VAULTMESH_CC_URL: center.url,
          VAULTMESH_STATE_DIR: join(dir, id),
          VAULTMESH_ROOT: dir,
          VAULTMESH_NODE_ID: id,
          VAULTMESH_OS_PROFILE: 'debian',
          VAULTMESH_JOIN_TOKEN: join_.token,
          VAULTMESH_CLOUDFLARED_CHECK: 'none',
          VAULTMESH_HEARTBEAT_SECS: '60',
          VAULTMESH_CC_PUBKEY: center.services.centerKey.publicKeyHex,
        },
        stdio: 'ignore',
      });
      procs.push({ id, p });
    }
    log(`${AGENTS} agents starting…`);
    await until('agents enrolled', async () => procs.every(({ id }) => (center.services.state.nodes.get(id)?.heartbeat_count ?? 0) > 0));
    await new Promise((r) => setTimeout(r, 500)); // their long-polls are open

    const done = new Map();
    const { sub } = center.services.bus.subscribe({ filter: (e) => e.kind === 'receipt' });
    (async () => {
      for (;;) {
        const e = await sub.next();
        if (!e) return;
        if (e !== 'idle') done.get(e.body.payload.command_id)?.(performance.now());
      }
    })();
    const latencies = [];
    const waves = Math.ceil(COMMANDS / AGENTS);
    const t0 = performance.now();
    for (let w = 0; w < waves; w++) {
      await Promise.all(
        procs.slice(0, Math.min(AGENTS, COMMANDS - w * AGENTS)).map(async ({ id }) => {
          const start = performance.now();
          let resolveReceipt;
          const got = new Promise((r) => (resolveReceipt = r));
          // The receipt can race the HTTP answer, so register by id as soon as the id is known (issue() returns it).
          const rec = await center.services.commands.issue({ nodeId: id, action: 'ping', author: 'bench' });
          if (rec.receipt) return latencies.push(performance.now() - start);
          done.set(rec.id, resolveReceipt);
          const end = await Promise.race([got, new Promise((_, rej) => setTimeout(() => rej(new Error(`no receipt for ${rec.id}`)), 15_000))]);
          latencies.push(end - start);
        }),
      );
    }
    const total = ms(t0);
    sub.close();
    const failed = center.services.commands.list({ limit: 1000 }).filter((c) => c.status !== 'succeeded').length;
    if (failed) throw new Error(`${failed} commands did not succeed`);
    latencies.sort((a, b) => a - b);
    return { latencies, total };
  } finally {
    for (const { p } of procs) p.kill('SIGKILL');
    await center.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

async function verifyCost() {
  const { verifyCommand, signCommand, createCommandPayload } = await dist('protocol/command.js');
  const { generateKeyPair } = await dist('protocol/keys.js');
  const { nodeCryptoBackend } = await dist('protocol/ed25519.js');
  const { nobleBackend } = await dist('protocol/ed25519-noble.js');
  const { canonicalBytes } = await dist('protocol/canonical-json.js');
  const key = generateKeyPair();
  const cmds = Array.from({ length: 64 }, (_, i) =>
    signCommand(createCommandPayload({ id: `cmd-${i}`, nodeId: 'web-01', action: 'collect-journal', args: { unit: 'nginx.service', lines: 200 }, nonce: i.toString(16).padStart(32, '0'), now: new Date(), keyId: key.keyId }), key),
  );
  const measure = (backend, iterations) => {
    const ctx = { nodeId: 'web-01', pinnedKeys: { [key.keyId]: key.publicKeyHex }, nowMs: Date.now(), maxSkewMs: 60_000, nonceSeen: () => false, allowedActions: ['collect-journal'], backend };
    for (let i = 0; i < 50; i++) verifyCommand(cmds[i % 64], ctx); // warm-up
    const t = performance.now();
    for (let i = 0; i < iterations; i++) if (!verifyCommand(cmds[i % 64], ctx).ok) throw new Error('bench command did not verify');
    const full = (ms(t) * 1000) / iterations;
    const bytes = cmds.map((c) => canonicalBytes(c.payload));
    const sigs = cmds.map((c) => Buffer.from(c.signature, 'hex'));
    const t2 = performance.now();
    for (let i = 0; i < iterations; i++) backend.verify(key.publicKey, bytes[i % 64], sigs[i % 64]);
    return { full, raw: (ms(t2) * 1000) / iterations };
  };
  const node = measure(nodeCryptoBackend, 5000);
  const noble = measure(nobleBackend, 600);
  return { node, noble };
}

export async function run({ log = () => {} } = {}) {
  const rows = [];
  const row = (name, value, unit, baseline, extra = {}) => {
    const r = { name, value: +value.toFixed(3), unit, ...(baseline !== undefined ? { baseline: +baseline.toFixed(3), ratio: +(baseline / value).toFixed(2) } : {}), ...extra };
    rows.push(r);
    log(r);
  };
  log('verification cost…');
  const v = await verifyCost();
  row('verifyCommand per command, node:crypto backend', v.node.full, 'µs', v.noble.full, { baseline_name: '@noble/ed25519 backend' });
  row('raw Ed25519 verify, node:crypto', v.node.raw, 'µs', v.noble.raw, { baseline_name: '@noble/ed25519' });
  row('verifyCommand throughput, node:crypto', 1e6 / v.node.full, 'cmd/s');
  row('verifyCommand throughput, noble', 1e6 / v.noble.full, 'cmd/s');
  log('round trips…');
  const rt = await roundTrip(log);
  row(`issue → receipt p50 (${rt.latencies.length} pings, ${AGENTS} agents, waves of ${AGENTS})`, pct(rt.latencies, 50), 'ms');
  row('issue → receipt p99', pct(rt.latencies, 99), 'ms');
  row('issue → receipt max', rt.latencies[rt.latencies.length - 1], 'ms');
  row('commands per second (all waves)', (rt.latencies.length / rt.total) * 1000, 'cmd/s');
  return rows;
}


if (process.argv[1] && resolve(process.argv[1]) === SELF) {
  const t = performance.now();
  const rows = await run({ log: (m) => process.stderr.write(`${typeof m === 'string' ? m : `  ${m.name}: ${m.value} ${m.unit}`}\n`) });
  printTable(rows);
  console.log(`\n(${(ms(t) / 1000).toFixed(0)} s, node ${process.version}, ${process.arch})`);
  process.exit(0); // the in-process center's undici/keep-alive sockets must not hold the benchmark open
}

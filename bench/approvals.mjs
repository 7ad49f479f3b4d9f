#!/usr/bin/env node
/**
 * Benchmark for m-of-n approval (run `npm run build` first; it imports dist/). On one in-process center with the
 * JSONL store and durable appends (fsync on, the default), through the command service the API uses:
 *  - a command signed at once (`issue`, one durable append) vs the same command proposed and approved by 2
 *    operators (`issue` → proposal, `decide` × 2: three durable appends, the last one signing): time per command, in
 *    waves of 10 concurrent commands, and the ratio (the cost of approval is its two extra appends);
 *  - a decision under contention: 3 operators approving one 2-of-n proposal at once (two count, one is refused),
 *    time until all three are answered.
 *
 *   node bench/approvals.mjs                       # prints a table
 *   import { run } from './bench/approvals.mjs'    # rows { name, value, unit, baseline?, ratio? }
 *
 * Bounded: COMMANDS (default 300) per variant; ~10 s.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { printTable } from './lib/stats.mjs';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const SELF = fileURLToPath(import.meta.url);
const COMMANDS = Math.min(Number(process.env.VAULTMESH_BENCH_APPROVAL_COMMANDS ?? 300), 5000);
const WAVE = 10;
const dist = (p) => import(pathToFileURL(join(ROOT, 'dist', p)).href);
const pct = (sorted, p) => sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];

async function withCenter(fn) {
  const { resolveCenterConfig } = await dist('command-center/config.js');
  const { startCenter } = await dist('command-center/center.js');
  const dir = mkdtempSync(join(tmpdir(), 'vm-bench-approvals-'));
  const policy = join(dir, 'policy.json');
  writeFileSync(policy, JSON.stringify({ v: 1, profiles: { plain: { actions: ['ping'] }, gated: { actions: ['ping'], approvals: { ping: 2 } } } }));
  const quiet = { info() {}, warn() {}, error() {} };
  const center = await startCenter(resolveCenterConfig({ port: 0, logDir: join(dir, 'logs'), stateDir: join(dir, 'state'), policy, orchestratorTickSecs: 0 }, {}), { log: quiet });
  try {
    return await fn(center);
  } finally {
    await center.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Two approved nodes, one per profile, enrolled straight through the journal (no agent needed: nothing is delivered). */
async function nodes(center) {
  for (const [id, profile] of [['plain-01', 'plain'], ['gated-01', 'gated']]) {
    const { generateKeyPair } = await dist('protocol/keys.js');
    const key = generateKeyPair();
    await center.services.submit({ kind: 'enrollment', node_id: id, author: 'bench', body: { action: 'request', token_id: 'bench', hostname: id, os_profile: profile, public_key: key.publicKeyHex, key_id: key.keyId, agent_version: '0.1.0', facts: {} } });
    await center.services.submit({ kind: 'enrollment', node_id: id, author: 'bench', body: { action: 'approve' } });
  }
}

async function timed(count, one) {
  const per = [];
  const t0 = performance.now();
  for (let done = 0; done < count; done += WAVE) {
    await Promise.all(
      Array.from({ length: Math.min(WAVE, count - done) }, async () => {
        const t = performance.now();
        await one();
        per.push(performance.now() - t);
      }),
    );
  }
  per.sort((a, b) => a - b);
  return { per, total: performance.now() - t0 };
}

export async function run({ log = () => {} } = {}) {
  return withCenter(async (center) => {
    await nodes(center);
    const cmds = center.services.commands;
    const rows = [];
    const row = (name, value, unit, extra = {}) => {
      const r = { name, value: +value.toFixed(3), unit, ...extra };
      rows.push(r);
      log(r);
    };
    // Warm-up: both paths once.
    await cmds.issue({ nodeId: 'plain-01', action: 'ping', author: 'alice' });
    log(`${COMMANDS} commands signed at once…`);
    const plain = await timed(COMMANDS, () => cmds.issue({ nodeId: 'plain-01', action: 'ping', author: 'alice' }));
    log(`${COMMANDS} commands proposed and approved by 2…`);
    const gated = await timed(COMMANDS, async () => {
      const rec = await cmds.issue({ nodeId: 'gated-01', action: 'ping', author: 'alice' });
      await cmds.decide({ id: rec.id, author: 'bob', kind: 'approve' });
      const done = await cmds.decide({ id: rec.id, author: 'carol', kind: 'approve' });
      if (done.status !== 'queued') throw new Error(`approval did not sign ${rec.id}: ${done.status}`);
    });
    const plainMs = plain.total / COMMANDS;
    const gatedMs = gated.total / COMMANDS;
    row(`2-of-n command: proposed + 2 approvals, time per command (${COMMANDS}, waves of ${WAVE})`, gatedMs, 'ms', { baseline: +plainMs.toFixed(3), baseline_name: 'signed at once (issue)', ratio: +(plainMs / gatedMs).toFixed(2), note: 'three durable appends instead of one' });
    row('2-of-n command p50 (propose → signed)', pct(gated.per, 50), 'ms', { baseline: +pct(plain.per, 50).toFixed(3), baseline_name: 'issue p50', ratio: +(pct(plain.per, 50) / pct(gated.per, 50)).toFixed(2) });
    row('2-of-n command p99', pct(gated.per, 99), 'ms', { baseline: +pct(plain.per, 99).toFixed(3), baseline_name: 'issue p99', ratio: +(pct(plain.per, 99) / pct(gated.per, 99)).toFixed(2) });

    log('3 approvals racing for a 2-of-n proposal…');
    const races = [];
    for (let i = 0; i < Math.min(100, COMMANDS); i++) {
      const rec = await cmds.issue({ nodeId: 'gated-01', action: 'ping', author: 'alice' });
      const t = performance.now();
      const answers = await Promise.allSettled(['bob', 'carol', 'dave'].map((who) => cmds.decide({ id: rec.id, author: who, kind: 'approve' })));
      races.push(performance.now() - t);
      const ok = answers.filter((a) => a.status === 'fulfilled').length;
      if (ok !== 2 || cmds.get(rec.id).status !== 'queued') throw new Error(`race on ${rec.id}: ${ok} approvals counted`);
    }
    races.sort((a, b) => a - b);
    row(`3 concurrent approvals of one 2-of-n proposal, all answered, p50 (${races.length} races)`, pct(races, 50), 'ms');
    row('3 concurrent approvals, p99', pct(races, 99), 'ms');
    return rows;
  });
}


if (process.argv[1] && resolve(process.argv[1]) === SELF) {
  const t = performance.now();
  const rows = await run({ log: (m) => process.stderr.write(`${typeof m === 'string' ? m : `  ${m.name}: ${m.value} ${m.unit}`}\n`) });
  printTable(rows);
  console.log(`\n(${((performance.now() - t) / 1000).toFixed(0)} s, node ${process.version}, ${process.arch})`);
  process.exit(0);
}

#!/usr/bin/env node
/**
 * Benchmark for the Merkle ledger (run `npm run build` first; it imports dist/):
 *  - root over 1,000,000 leaves (leaf hashing + tree) vs a raw loop of 2n−1 SHA-256 calls over the same bytes
 *  - append cost per scan through the center's ledger at n = 1,000 vs n = 1,000,000
 *  - inclusion proof for a random leaf of a 1M log (cached subtrees) and, for scale, the pure function without cache
 *  - `ledger verify` throughput (MB/s) on a generated ~150 MB scans journal with signed heads
 *  - merkletreejs (configured for RFC 6962) on the same 1M leaf hashes: build, one append (it rebuilds), proof, RSS,
 *    each structure built in its own child process so RSS figures are comparable.
 *
 *   node bench/ledger.mjs                        # prints a table
 *   import { run } from './bench/ledger.mjs'     # rows { name, value, unit, baseline?, ratio? }
 *
 * Bounded: about a minute on a slow 2-core machine; children are killed after 60 s.
 * VAULTMESH_BENCH_LEAVES (default 1000000) and VAULTMESH_BENCH_VERIFY_MB (default 150) shrink it.
 */
import { spawnSync } from 'node:child_process';
import { hash, createHash } from 'node:crypto';
import { appendFileSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const SELF = fileURLToPath(import.meta.url);
const N = Number(process.env.VAULTMESH_BENCH_LEAVES ?? 1_000_000);
const VERIFY_MB = Number(process.env.VAULTMESH_BENCH_VERIFY_MB ?? 150);
const dist = (p) => import(pathToFileURL(join(ROOT, 'dist', p)).href);

const SEVS = ['critical', 'high', 'medium', 'low', 'info'];
const CHECKS = ['ssh_root_login', 'firewall_default', 'pending_updates', 'world_writable', 'suid_binaries', 'ntp_sync'];

/** A canonical scan envelope line; `findings` sets its size (1 ≈ 330 bytes, 6 ≈ 1.2 KB). */
function scanLine(seq, findings) {
  const node = `node-${String(seq % 1000).padStart(4, '0')}`;
  const ts = new Date(Date.UTC(2025, 0, 1) + seq * 1000).toISOString();
  const fs = [];
  for (let i = 0; i < findings; i++) {
    const check = CHECKS[(seq + i) % CHECKS.length];
    fs.push(`{"check":"${check}","detail":"check ${check} deviates from the ${node} baseline","evidence":"/etc/${check}.conf line ${i + 1}","severity":"${SEVS[(seq + i) % 5]}","title":"${check} out of policy"}`);
  }
  return `{"author":"node:${node}","body":{"findings":[${fs.join(',')}],"summary":"${findings} findings"},"id":"scan-${seq}","kind":"scan","node_id":"${node}","seq":${seq},"ts":"${ts}","v":1}`;
}

/** n lines packed in one buffer (like a journal in memory) with their offsets. */
function packedLines(n, findings) {
  const parts = [];
  const offsets = new Float64Array(n + 1);
  let at = 0;
  for (let i = 0; i < n; i++) {
    const b = Buffer.from(scanLine(i + 1, findings));
    parts.push(b);
    offsets[i] = at;
    at += b.length;
  }
  offsets[n] = at;
  return { buf: Buffer.concat(parts), offsets };
}

const ms = (t0) => performance.now() - t0;
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

// ---------------------------------------------------------------------------------------------------------------
// Child processes: build one structure over N deterministic leaf hashes, report timings and RSS.

async function child(kind) {
  const leaves = new Array(N);
  for (let i = 0; i < N; i++) leaves[i] = createHash('sha256').update(Buffer.from([0])).update(String(i)).digest();
  globalThis.gc?.();
  const rss0 = process.memoryUsage().rss;
  const rnd = (k) => Math.floor(((k * 2654435761) % 2 ** 32) / 2 ** 32 * N);
  const out = {};
  if (kind === 'ours') {
    const { MerkleLog } = await dist('protocol/merkle.js');
    let t = performance.now();
    const log = new MerkleLog();
    for (const l of leaves) log.append(l);
    const root = log.root();
    out.build_ms = ms(t);
    t = performance.now();
    log.append(leaves[0]);
    log.root();
    out.append_ms = ms(t);
    const times = [];
    for (let k = 1; k <= 200; k++) {
      t = performance.now();
      log.inclusionProof(rnd(k), N);
      times.push(ms(t));
    }
    out.proof_ms = median(times);
    out.root = root.toString('hex');
  } else {
    const { MerkleTree } = await import(pathToFileURL(join(ROOT, 'node_modules/merkletreejs/dist/index.js')).href).then((m) => m.default ?? m);
    const sha = (d) => createHash('sha256').update(d).digest();
    const opts = { hashLeaves: false, sortPairs: false, duplicateOdd: false, concatenator: (p) => Buffer.concat([Buffer.from([1]), ...p]) };
    let t = performance.now();
    const tree = new MerkleTree(leaves, sha, opts);
    out.build_ms = ms(t);
    const root = tree.getRoot();
    t = performance.now();
    tree.addLeaf(leaves[0]);
    out.append_ms = ms(t);
    const times = [];
    for (let k = 1; k <= 200; k++) {
      const i = rnd(k);
      t = performance.now();
      tree.getProof(leaves[i], i);
      times.push(ms(t));
    }
    out.proof_ms = median(times);
    out.root = root.toString('hex');
  }
  globalThis.gc?.();
  out.rss_mb = (process.memoryUsage().rss - rss0) / 2 ** 20;
  process.stdout.write(JSON.stringify(out));
}

function runChild(kind) {
  const r = spawnSync(process.execPath, ['--expose-gc', '--max-old-space-size=8192', SELF, '--child', kind], { encoding: 'utf8', timeout: 60_000 });
  if (r.status !== 0) throw new Error(`child ${kind} failed: ${r.error?.message ?? r.stderr}`);
  return JSON.parse(r.stdout);
}

// ---------------------------------------------------------------------------------------------------------------

export async function run({ log = () => {} } = {}) {
  const { leafHash, merkleRoot, inclusionProof } = await dist('protocol/merkle.js');
  const { createLedger } = await dist('command-center/ledger.js');
  const { ledgerVerify } = await dist('cli/ledger.js');
  const { keyPairFromSeed } = await dist('protocol/keys.js');
  const key = keyPairFromSeed(new Uint8Array(32).fill(9));
  const rows = [];
  const row = (name, value, unit, baseline, extra = {}) => {
    const r = { name, value: Number(value.toFixed(3)), unit, ...extra };
    if (baseline !== undefined) Object.assign(r, { baseline: Number(baseline.toFixed(3)), ratio: Number((value / baseline).toFixed(3)) });
    rows.push(r);
    log(r);
  };

  // 1. Root over N leaves vs 2n−1 raw SHA-256 calls over the same bytes (n over the lines, n−1 over 65 bytes).
  log(`generating ${N} lines…`);
  const { buf, offsets } = packedLines(N, 1);
  const line = (i) => buf.subarray(offsets[i], offsets[i + 1]);
  const node = Buffer.alloc(65, 1);
  const rawRuns = [];
  const oursRuns = [];
  let root;
  for (let rep = 0; rep < 2; rep++) {
    let t = performance.now();
    for (let i = 0; i < N; i++) hash('sha256', line(i), 'buffer');
    for (let i = 0; i < N - 1; i++) hash('sha256', node, 'buffer');
    rawRuns.push(ms(t));
    t = performance.now();
    const leaves = new Array(N);
    for (let i = 0; i < N; i++) leaves[i] = leafHash(line(i));
    root = merkleRoot(leaves);
    oursRuns.push(ms(t));
  }
  const raw = Math.min(...rawRuns);
  row(`root over ${N} leaves (leaf + node hashing)`, Math.min(...oursRuns), 'ms', raw, { baseline_name: `raw loop of ${2 * N - 1} SHA-256 calls` });
  {
    const leaves = Array.from({ length: N }, (_, i) => leafHash(line(i)));
    const t = performance.now();
    inclusionProof(leaves, Math.floor(N / 3));
    row(`inclusion proof, pure function without cache (n=${N})`, ms(t), 'ms');
  }

  // 2 + 3. The center's ledger: append cost per scan at n=1k vs n=N, proof time on the N log.
  const dir = mkdtempSync(join(tmpdir(), 'vm-bench-ledger-'));
  try {
    const appendPerLeaf = async (ledger, from, count) => {
      const batch = [];
      for (let i = from; i < from + count; i++) batch.push(line(i % N));
      const t = performance.now();
      for (let i = 0; i < batch.length; i += 100) ledger.append(batch.slice(i, i + 100));
      return (ms(t) / count) * 1000; // µs
    };
    const small = createLedger({ dir, journalFile: 'small.jsonl', rootFile: 'SMALL_ROOT.txt', chainFile: 'SMALL_PROOFCHAIN.json', key });
    await small.load();
    await appendPerLeaf(small, 0, 1000);
    const atSmall = await appendPerLeaf(small, 1000, 20_000);
    await small.close();
    const big = createLedger({ dir, journalFile: 'big.jsonl', rootFile: 'BIG_ROOT.txt', chainFile: 'BIG_PROOFCHAIN.json', key });
    await big.load();
    log(`appending ${N} lines to a ledger…`);
    await appendPerLeaf(big, 0, N);
    const atBig = await appendPerLeaf(big, N, 20_000);
    row(`ledger append per scan at n=${N} (hash + tree + id index + cache)`, atBig, 'µs', atSmall, { baseline_name: 'same at n=1000' });
    await big.publishHead();
    const times = [];
    for (let k = 0; k < 1000; k++) {
      const i = Math.floor(Math.random() * big.size);
      const t = performance.now();
      big.inclusionProofFor(i);
      times.push(ms(t));
    }
    row(`ledger inclusion proof, random leaf of ${big.size} (median)`, median(times), 'ms');
    row(`ledger inclusion proof, random leaf of ${big.size} (max of 1000)`, Math.max(...times), 'ms');
    await big.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }

  // 4. ledger verify throughput on a ~VERIFY_MB scans journal with a head every 20k lines.
  const vdir = mkdtempSync(join(tmpdir(), 'vm-bench-verify-'));
  try {
    log(`generating a ~${VERIFY_MB} MB scans journal…`);
    const ledger = createLedger({ dir: vdir, journalFile: 'sovereign-scans.jsonl', rootFile: 'ROOT.txt', chainFile: 'PROOFCHAIN.json', key });
    await ledger.load();
    const file = join(vdir, 'sovereign-scans.jsonl');
    let written = 0;
    for (let seq = 1; written < VERIFY_MB * 1e6; ) {
      const batch = [];
      for (let k = 0; k < 20_000; k++) batch.push(Buffer.from(scanLine(seq++, 6)));
      const text = Buffer.concat(batch.flatMap((b) => [b, Buffer.from('\n')]));
      appendFileSync(file, text);
      written += text.length;
      ledger.append(batch);
      await ledger.publishHead();
    }
    await ledger.close();
    const size = statSync(file).size;
    const t = performance.now();
    const result = await ledgerVerify(vdir, 'scans');
    const secs = ms(t) / 1000;
    if (!result.ok) throw new Error(`verify failed: ${result.problems[0]?.message}`);
    row(`ledger verify throughput (${(size / 1e6).toFixed(0)} MB, ${result.tree_size} lines, ${result.heads} heads)`, size / 1e6 / secs, 'MB/s');
  } finally {
    rmSync(vdir, { recursive: true, force: true });
  }

  // 5. Ours vs merkletreejs on the same N leaf hashes, each in a fresh process.
  log('merkletreejs vs MerkleLog in child processes…');
  const ours = runChild('ours');
  const lib = runChild('lib');
  if (ours.root !== lib.root) throw new Error('merkletreejs and protocol/merkle disagree on the root');
  row(`MerkleLog build over ${N} leaf hashes`, ours.build_ms, 'ms', lib.build_ms, { baseline_name: 'merkletreejs constructor' });
  row(`append one leaf at n=${N}`, ours.append_ms, 'ms', lib.append_ms, { baseline_name: 'merkletreejs addLeaf (rebuild)' });
  row(`inclusion proof at n=${N} (median of 200)`, ours.proof_ms, 'ms', lib.proof_ms, { baseline_name: 'merkletreejs getProof' });
  row(`RSS of the tree at n=${N}`, ours.rss_mb, 'MB', lib.rss_mb, { baseline_name: 'merkletreejs' });
  void root;
  return rows;
}

function printTable(rows) {
  const fmt = (v) => (Math.abs(v) >= 100 ? v.toFixed(0) : v.toFixed(3));
  const lines = rows.map((r) => [r.name, `${fmt(r.value)} ${r.unit}`, r.baseline === undefined ? '' : `${fmt(r.baseline)} ${r.unit} (${r.baseline_name})`, r.ratio === undefined ? '' : `${r.ratio.toFixed(2)}×`]);
  const head = ['measure', 'ours', 'baseline', 'ratio'];
  const w = head.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i].length)));
  const out = [head, w.map((n) => '-'.repeat(n)), ...lines].map((l) => l.map((c, i) => c.padEnd(w[i])).join('  ')).join('\n');
  console.log(out);
}

if (process.argv[2] === '--child') {
  await child(process.argv[3]);
} else if (process.argv[1] && resolve(process.argv[1]) === SELF) {
  const t = performance.now();
  const rows = await run({ log: (m) => process.stderr.write(`${typeof m === 'string' ? m : `  ${m.name}: ${m.value} ${m.unit}`}\n`) });
  printTable(rows);
  console.log(`\n(${(ms(t) / 1000).toFixed(0)} s, node ${process.version}, ${process.arch})`);
}

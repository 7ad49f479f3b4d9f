#!/usr/bin/env node
/**
 * Benchmark for the Merkle ledger (run `npm run build` first; it imports dist/):
 *  - root over 1,000,000 leaves (leaf hashing + tree) vs a raw loop of 2n−1 SHA-256 calls over the same bytes
 *  - append cost per scan through the center's ledger at n = 1,000 vs n = 1,000,000
 *  - inclusion proof for a random leaf of a 1M log (cached subtrees) and, for scale, the pure function without cache
 *  - `ledger verify` throughput (MB/s) on a generated ~150 MB scans journal with signed heads
 *  - merkletreejs (configured for RFC 6962) on the same 1M leaf hashes: build, one append (it rebuilds), proof, RSS,
 *    each structure built in its own child process so RSS figures are comparable.
 *  - head-write cost (`publishHead`: sign, consistency proof, chain file + ROOT.txt written atomically) with 100 vs
 *    100,000 heads already in the chain (archive segments of 1,000), the old whole-chain rewrite at 100,000 heads for
 *    comparison, and `ledger verify` over those 100,000 heads across their segments.
 *
 *   node bench/ledger.mjs                        # prints a table
 *   import { run } from './bench/ledger.mjs'     # rows { name, value, unit, baseline?, ratio? }
 *
 * Bounded: about a minute on a slow 2-core machine; children are killed after 60 s.
 * VAULTMESH_BENCH_LEAVES (default 1000000), VAULTMESH_BENCH_VERIFY_MB (default 150) and VAULTMESH_BENCH_HEADS
 * (default 100000) shrink it; VAULTMESH_BENCH_PARTS=heads,… runs a subset (root, ledger, verify, lib, heads).
 */
import { spawnSync } from 'node:child_process';
import { hash, createHash } from 'node:crypto';
import { appendFileSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const SELF = fileURLToPath(import.meta.url);
const N = Number(process.env.VAULTMESH_BENCH_LEAVES ?? 1_000_000);
const VERIFY_MB = Number(process.env.VAULTMESH_BENCH_VERIFY_MB ?? 150);
const HEADS = Number(process.env.VAULTMESH_BENCH_HEADS ?? 100_000);
const HEAD_WRITES = 1000; // one full cycle of the chain file (DEFAULT_MAX_CHAIN_HEADS) in both cases
const PARTS = new Set((process.env.VAULTMESH_BENCH_PARTS ?? 'root,ledger,verify,lib,heads').split(',').map((x) => x.trim()));
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
  const { createLedger } = await dist('command-center/ledger/ledger.js');
  const { createJsonlReader } = await dist('command-center/store/jsonl-store.js');
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

  // 6 first (it needs little memory): head-write cost against the length of the chain.
  if (PARTS.has('heads')) await headWrites({ row, log, key });

  if (!PARTS.has('root') && !PARTS.has('ledger') && !PARTS.has('verify') && !PARTS.has('lib')) return rows;
  // 1. Root over N leaves vs 2n−1 raw SHA-256 calls over the same bytes (n over the lines, n−1 over 65 bytes).
  log(`generating ${N} lines…`);
  const { buf, offsets } = packedLines(N, 1);
  const line = (i) => buf.subarray(offsets[i], offsets[i + 1]);
  if (PARTS.has('root')) {
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
  void root;
  }

  // 2 + 3. The center's ledger: append cost per scan at n=1k vs n=N, proof time on the N log.
  if (PARTS.has('ledger')) {
  const dir = mkdtempSync(join(tmpdir(), 'vm-bench-ledger-'));
  try {
    const appendPerLeaf = async (ledger, from, count) => {
      const batch = [];
      for (let i = from; i < from + count; i++) batch.push(line(i % N));
      const t = performance.now();
      for (let i = 0; i < batch.length; i += 100) ledger.append(batch.slice(i, i + 100));
      return (ms(t) / count) * 1000; // µs
    };
    const small = createLedger({ dir, store: createJsonlReader({ dir }), journal: 'scans', journalFile: 'small.jsonl', rootFile: 'SMALL_ROOT.txt', chainFile: 'SMALL_PROOFCHAIN.json', key });
    await small.load();
    await appendPerLeaf(small, 0, 1000);
    const atSmall = await appendPerLeaf(small, 1000, 20_000);
    await small.close();
    const big = createLedger({ dir, store: createJsonlReader({ dir }), journal: 'scans', journalFile: 'big.jsonl', rootFile: 'BIG_ROOT.txt', chainFile: 'BIG_PROOFCHAIN.json', key });
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
  }

  // 4. ledger verify throughput on a ~VERIFY_MB scans journal with a head every 20k lines.
  if (PARTS.has('verify')) {
  const vdir = mkdtempSync(join(tmpdir(), 'vm-bench-verify-'));
  try {
    log(`generating a ~${VERIFY_MB} MB scans journal…`);
    const ledger = createLedger({ dir: vdir, store: createJsonlReader({ dir: vdir }), journal: 'scans', journalFile: 'sovereign-scans.jsonl', rootFile: 'ROOT.txt', chainFile: 'PROOFCHAIN.json', key });
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
  }

  // 5. Ours vs merkletreejs on the same N leaf hashes, each in a fresh process.
  if (PARTS.has('lib')) {
  log('merkletreejs vs MerkleLog in child processes…');
  const ours = runChild('ours');
  const lib = runChild('lib');
  if (ours.root !== lib.root) throw new Error('merkletreejs and protocol/merkle disagree on the root');
  row(`MerkleLog build over ${N} leaf hashes`, ours.build_ms, 'ms', lib.build_ms, { baseline_name: 'merkletreejs constructor' });
  row(`append one leaf at n=${N}`, ours.append_ms, 'ms', lib.append_ms, { baseline_name: 'merkletreejs addLeaf (rebuild)' });
  row(`inclusion proof at n=${N} (median of 200)`, ours.proof_ms, 'ms', lib.proof_ms, { baseline_name: 'merkletreejs getProof' });
  row(`RSS of the tree at n=${N}`, ours.rss_mb, 'MB', lib.rss_mb, { baseline_name: 'merkletreejs' });
  }
  return rows;
}

/**
 * A scans log dir as the center leaves it after `heads` heads, one journal line per head: archive segments of
 * DEFAULT_MAX_CHAIN_HEADS heads and the chain file, built with the ledger's own pure functions (writing 100,000 heads
 * through publishHead would mostly measure 400,000 fsyncs). Returns every entry line, for the old-format baseline.
 */
async function synthesizeChain(dir, heads, key) {
  const { DEFAULT_MAX_CHAIN_HEADS: per } = await dist('command-center/ledger/ledger.js');
  const { signTreeHead, headHash, formatProofChain, archiveFileName, formatRootFile } = await dist('protocol/ledger-files.js');
  const { canonicalJson } = await dist('protocol/canonical-json.js');
  const { MerkleLog, leafHash } = await dist('protocol/merkle.js');
  const log = new MerkleLog();
  const lines = [];
  const entryLines = [];
  let prev;
  let t = Date.UTC(2025, 0, 1);
  for (let i = 0; i < heads; i++) {
    const text = scanLine(i + 1, 1);
    lines.push(text);
    log.append(leafHash(Buffer.from(text)));
    const head = signTreeHead(
      { tree_size: log.size, root_hash: log.root().toString('hex'), timestamp: new Date((t += 10_000)).toISOString(), previous_head_hash: prev ? headHash(prev.head) : null, key_id: key.keyId },
      key,
    );
    const entry = { head, public_key: key.publicKeyHex, consistency_proof: prev ? log.consistencyProof(prev.head.tree_size, log.size).map((h) => h.toString('hex')) : [] };
    entryLines.push(canonicalJson(entry));
    prev = entry;
  }
  writeFileSync(join(dir, 'sovereign-scans.jsonl'), lines.map((l) => `${l}\n`).join(''));
  // What the ledger leaves: full segments of `per` heads, the rest (1..per heads) in the chain file.
  const inChain = ((heads - 1) % per) + 1;
  const firstInChain = heads - inChain;
  const hashAt = (i) => headHash(JSON.parse(entryLines[i]).head);
  for (let first = 0; first < firstInChain; first += per) {
    const pos = { first_index: first, previous_head_hash: first === 0 ? null : hashAt(first - 1) };
    writeFileSync(join(dir, archiveFileName('PROOFCHAIN.json', first, first + per - 1)), formatProofChain('sovereign-scans.jsonl', entryLines.slice(first, first + per), pos), { mode: 0o444 });
  }
  const pos = { first_index: firstInChain, previous_head_hash: firstInChain === 0 ? null : hashAt(firstInChain - 1) };
  writeFileSync(join(dir, 'PROOFCHAIN.json'), formatProofChain('sovereign-scans.jsonl', entryLines.slice(firstInChain), pos));
  writeFileSync(join(dir, 'ROOT.txt'), formatRootFile(prev.head));
  return entryLines;
}

/** 6. publishHead cost with 100 vs HEADS heads in the chain; the old whole-file rewrite; verify across segments. */
async function headWrites({ row, log, key }) {
  const { createNamedLedger } = await dist('command-center/ledger/ledger.js');
  const { createJsonlReader } = await dist('command-center/store/jsonl-store.js');
  const { formatProofChain } = await dist('protocol/ledger-files.js');
  const { ledgerVerify } = await dist('cli/ledger.js');
  const { writeFileAtomicSync } = await dist('lib/atomic-file.js');
  const measure = async (dir, heads) => {
    const ledger = createNamedLedger('scans', { dir, store: createJsonlReader({ dir }), key });
    await ledger.load();
    const times = [];
    let chainBytes = 0;
    for (let k = 0; k < HEAD_WRITES; k++) {
      const text = scanLine(heads + k + 1, 1);
      appendFileSync(join(dir, 'sovereign-scans.jsonl'), `${text}\n`);
      ledger.append([Buffer.from(text)]);
      const t = performance.now();
      await ledger.publishHead();
      times.push(ms(t));
      chainBytes = Math.max(chainBytes, statSync(join(dir, 'PROOFCHAIN.json')).size);
    }
    await ledger.close();
    return { mean: times.reduce((a, b) => a + b, 0) / times.length, median: median(times), max: Math.max(...times), chainBytes };
  };
  const dirs = [];
  try {
    const warm = mkdtempSync(join(tmpdir(), 'vm-bench-heads-'));
    dirs.push(warm);
    await synthesizeChain(warm, 10, key);
    await measure(warm, 10); // JIT and page-cache warm-up, not reported
    const small = mkdtempSync(join(tmpdir(), 'vm-bench-heads-'));
    dirs.push(small);
    await synthesizeChain(small, 100, key);
    const atSmall = await measure(small, 100);
    log(`synthesizing a chain of ${HEADS} heads…`);
    const big = mkdtempSync(join(tmpdir(), 'vm-bench-heads-'));
    dirs.push(big);
    const entryLines = await synthesizeChain(big, HEADS, key);
    const atBig = await measure(big, HEADS);
    const segments = readdirSync(big).filter((f) => /^PROOFCHAIN-\d+-\d+\.json$/.test(f)).length;
    row(`head write with ${HEADS} heads in the chain (mean of ${HEAD_WRITES})`, atBig.mean, 'ms', atSmall.mean, { baseline_name: 'same with 100 heads' });
    row(`head write with ${HEADS} heads in the chain (median of ${HEAD_WRITES})`, atBig.median, 'ms', atSmall.median, { baseline_name: 'same with 100 heads' });
    row(`head write with ${HEADS} heads in the chain (max of ${HEAD_WRITES}: the write that archives 1000 heads)`, atBig.max, 'ms', atSmall.max, { baseline_name: 'same with 100 heads' });
    row(`largest PROOFCHAIN.json during those writes (${segments} archive segments beside it)`, atBig.chainBytes / 1e6, 'MB', atSmall.chainBytes / 1e6, { baseline_name: 'same with 100 heads' });

    // The old format: every head rewrote the whole chain (all entries) atomically.
    const old = [];
    for (let k = 0; k < 3; k++) {
      const t = performance.now();
      writeFileAtomicSync(join(big, 'OLD_PROOFCHAIN.json'), formatProofChain('sovereign-scans.jsonl', entryLines), 0o644);
      old.push(ms(t));
    }
    const oldBytes = statSync(join(big, 'OLD_PROOFCHAIN.json')).size;
    rmSync(join(big, 'OLD_PROOFCHAIN.json'));
    row(`old design: head write rewriting all ${HEADS} heads (${(oldBytes / 1e6).toFixed(0)} MB, median of 3)`, median(old), 'ms', atBig.median, { baseline_name: 'segmented, median' });

    const t = performance.now();
    const result = await ledgerVerify(big, 'scans');
    if (!result.ok) throw new Error(`verify failed: ${result.problems[0]?.message}`);
    row(`ledger verify of ${result.heads} heads in ${result.segments} segments + chain file (${result.tree_size} lines)`, ms(t) / 1000, 's');
  } finally {
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  }
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

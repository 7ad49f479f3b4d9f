#!/usr/bin/env node
/**
 * Where the center's CPU goes under signed heartbeat load (run `npm run build` first). Not a bench/run.mjs module:
 * a tool for docs/BENCHMARKS.md. It starts the built center with `node --cpu-prof` (and `--verify-workers` as
 * given), drives the same closed-loop load as bench/ingest.mjs for VAULTMESH_BENCH_PROFILE_SECS (default 8), stops
 * it, and prints the main thread's top self-time functions and µs of CPU per acknowledged request by stage.
 * It also prints CPU µs per acknowledged request of the main thread, of the whole process and (user + system) of
 * each thread, read from /proc during the loaded window; with --no-profile that is all it does (the profiler itself
 * costs CPU). Frames of the bundled center are named after their TypeScript modules (through its source map).
 * With --alloc it samples the main thread's allocations instead of its CPU (V8's sampling heap profiler, collected
 * objects included, started and stopped around the loaded window) and prints bytes allocated per acknowledged
 * request, by function. Unlike CPU time on a shared machine, that figure repeats within a few per cent from run to
 * run, which makes it the one to compare small changes of the hot path with.
 *
 *   node bench/profile-ingest.mjs [--verify-workers N] [--keep DIR] [--no-profile | --alloc]
 * Bounded: ≈ 30 s.
 */
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { SourceMap } from 'node:module';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { enrollViaApi, makeNodes, presignHeartbeats, protocol } from './lib/agents.mjs';
import { startCenterProcess } from './lib/center-process.mjs';
import { closedLoop } from './lib/load.mjs';
import { cpuMeter } from './lib/proc.mjs';

const { values } = parseArgs({ options: { 'verify-workers': { type: 'string' }, keep: { type: 'string' }, 'no-profile': { type: 'boolean' }, alloc: { type: 'boolean' } } });

/** User and system CPU seconds of one thread (a task of the process) from /proc: the main thread's task id is the pid. */
function threadCpu(pid, tid) {
  try {
    const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
    const name = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return { name, user: Number(rest[11]) / 100, sys: Number(rest[12]) / 100 }; // USER_HZ is 100 on Linux
  } catch {
    return { name: '?', user: NaN, sys: NaN };
  }
}
const threadCpuSeconds = (pid, tid) => {
  const t = threadCpu(pid, tid);
  return t.user + t.sys;
};
/** Every thread's CPU, by task id. */
function threadsCpu(pid) {
  let tids = [];
  try {
    tids = readdirSync(`/proc/${pid}/task`);
  } catch {}
  return new Map(tids.map((tid) => [tid, threadCpu(pid, tid)]));
}
const BENCH = dirname(fileURLToPath(import.meta.url));
const SECS = Number(process.env.VAULTMESH_BENCH_PROFILE_SECS ?? 8);

/**
 * Stages, matched on a profile node's call stack (innermost frame first): the first stage whose test matches any
 * frame owns the sample's self time. Order matters: Ed25519 inside the request check counts as "ed25519".
 */
const STAGES = [
  ['ed25519 verify (main thread)', (f) => f.functionName === 'verify' && /ed25519|crypto/.test(f.url)],
  ['gc', (f) => f.functionName === '(garbage collector)'],
  // The journal line's canonical JSON runs in store/envelope-store (committedEntry): counted with the journal.
  ['journal (canonical line, write, group commit)', (f) => /store\/(jsonl-store|journal|drain-loop|envelope-store)|node:fs|fs\/promises/.test(f.url)],
  ['commit fan-out (state, SSE ring, ledgers)', (f) => /store\/commit-fanout|fleet\/|http\/event-bus|ledger\//.test(f.url)],
  ['request signature check (signed bytes, SHA-256, replay guard)', (f) => /request-signing|agent-auth|replay-guard|verify-pool|verify-batch/.test(f.url)],
  ['heartbeat route (JSON parse, zod, response)', (f) => /routes\/agent|http-errors|well-formed|zod/.test(f.url)],
  ['metrics', (f) => /prom-client|http\/metrics/.test(f.url)],
  ['abuse limits', (f) => /rate-limit/.test(f.url)],
  ['hono + node:http (routing, Request/Response, sockets)', (f) => /hono|node:_http|node:net|undici|node:internal\/(http|streams|webstreams)|node:stream/.test(f.url)],
];

/**
 * The center is bundled (scripts/bundle-center.mjs): its frames name dist/command-center/main.js and its chunks. Each
 * frame is mapped back through the bundle's source map to the TypeScript module it came from, so that the stages
 * (matched on module paths) and the top list name real modules. Frames without a map keep their URL.
 */
const sourceMaps = new Map();
function originalFrame(f) {
  if (!f.url.startsWith('file://') || !f.url.endsWith('.js')) return f;
  let map = sourceMaps.get(f.url);
  if (map === undefined) {
    try {
      map = new SourceMap(JSON.parse(readFileSync(`${fileURLToPath(f.url)}.map`, 'utf8')));
    } catch {
      map = null;
    }
    sourceMaps.set(f.url, map);
  }
  const e = map?.findEntry(f.lineNumber, f.columnNumber);
  if (!e?.originalSource) return f;
  const url = e.originalSource.replace(/^(\.\.\/)+/, '');
  return { ...f, url, lineNumber: e.originalLine, functionName: f.functionName || e.name || '' };
}

function analyse(profile) {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const self = new Map();
  const dt = profile.timeDeltas;
  for (let i = 0; i < profile.samples.length; i++) self.set(profile.samples[i], (self.get(profile.samples[i]) ?? 0) + (dt[i] ?? 0));
  const fns = new Map();
  const stages = new Map();
  let total = 0;
  for (const [id, us] of self) {
    const n = byId.get(id);
    const f = originalFrame(n.callFrame);
    if (f.functionName === '(idle)' || f.functionName === '(program)') continue;
    // A verification worker sleeping in Atomics.wait (verify-pool.ts) is charged to its program's top level: idle.
    if (f.functionName === '' && f.url === '[worker eval]') continue;
    total += us;
    const key = `${f.functionName || '(anonymous)'} ${f.url.replace(/^.*\/(node_modules|dist)\//, '$1/').replace(/^file:\/\//, '')}:${f.lineNumber + 1}`;
    fns.set(key, (fns.get(key) ?? 0) + us);
    let stage = 'other';
    for (let cur = id; cur !== undefined && stage === 'other'; cur = parent.get(cur)) {
      const frame = originalFrame(byId.get(cur).callFrame);
      for (const [name, test] of STAGES) {
        if (test(frame)) {
          stage = name;
          break;
        }
      }
    }
    stages.set(stage, (stages.get(stage) ?? 0) + us);
  }
  return { total, fns: [...fns].sort((a, b) => b[1] - a[1]), stages: [...stages].sort((a, b) => b[1] - a[1]) };
}

/** Bytes allocated by function and by stage, from a sampling heap profile (a tree with each node's self size). */
function analyseAllocations(profile) {
  const fns = new Map();
  const stages = new Map();
  let total = 0;
  const visit = (node, stage) => {
    const f = originalFrame(node.callFrame);
    // As for CPU: the innermost frame that names a stage owns the bytes (a frame of no stage inherits its caller's).
    let own = stage;
    for (const [name, test] of STAGES) {
      if (test(f)) {
        own = name;
        break;
      }
    }
    const bytes = node.selfSize ?? 0;
    if (bytes) {
      total += bytes;
      const key = `${f.functionName || '(anonymous)'} ${f.url.replace(/^.*\/(node_modules|dist)\//, '$1/').replace(/^file:\/\//, '')}:${f.lineNumber + 1}`;
      fns.set(key, (fns.get(key) ?? 0) + bytes);
      stages.set(own, (stages.get(own) ?? 0) + bytes);
    }
    for (const child of node.children ?? []) visit(child, own);
  };
  visit(profile.head, 'other');
  return { total, fns: [...fns].sort((a, b) => b[1] - a[1]), stages: [...stages].sort((a, b) => b[1] - a[1]) };
}

const dir = mkdtempSync(join(tmpdir(), 'vm-bench-profile-'));
const profDir = values.keep ?? join(dir, 'prof');
mkdirSync(profDir, { recursive: true });
let center;
try {
  const args = ['--auto-approve', ...(values['verify-workers'] !== undefined ? ['--verify-workers', values['verify-workers']] : [])];
  const allocFile = join(profDir, 'main.heapprofile');
  const nodeArgs = values.alloc ? ['--import', join(BENCH, 'lib', 'alloc-sampler.mjs')] : values['no-profile'] ? [] : ['--cpu-prof', '--cpu-prof-dir', profDir];
  center = await startCenterProcess(dir, args, { maxMs: 120_000, nodeArgs, env: { VAULTMESH_ALLOC_PROFILE: allocFile } });
  const nodes = await makeNodes(200, 'prof');
  await enrollViaApi(center.url, center.token, nodes);
  const p = await protocol();
  const { requests } = presignHeartbeats(p, nodes, 1000 + SECS * 5000, { maxMs: 20_000 });
  await closedLoop(center.url, requests.slice(0, 1000), { concurrency: 16, connections: 16 });
  const cpu = cpuMeter(center.pid);
  cpu.start();
  const main0 = threadCpuSeconds(center.pid, center.pid);
  const threads0 = threadsCpu(center.pid);
  if (values.alloc) process.kill(center.pid, 'SIGUSR2');
  const r = await closedLoop(center.url, requests.slice(1000), { concurrency: 64, connections: 64, maxMs: SECS * 1000 });
  if (values.alloc) process.kill(center.pid, 'SIGUSR2');
  const mainSecs = threadCpuSeconds(center.pid, center.pid) - main0;
  const cpuPct = cpu.stop();
  // User and kernel time per thread: a thread woken by a futex often pays more in the kernel than in its own work.
  for (const [tid, t] of threadsCpu(center.pid)) {
    const t0 = threads0.get(tid);
    if (!t0) continue;
    const user = ((t.user - t0.user) * 1e6) / r.ok;
    const sys = ((t.sys - t0.sys) * 1e6) / r.ok;
    if (user + sys >= 1) console.log(`  thread ${tid === String(center.pid) ? 'main' : tid} (${t.name}): ${user.toFixed(0)} µs user + ${sys.toFixed(0)} µs system per request`);
  }
  console.log(`CPU per acknowledged request: main thread ${((mainSecs * 1e6) / r.ok).toFixed(0)} µs, whole process ${((cpuPct / 100) * r.secs * 1e6 / r.ok).toFixed(0)} µs`);
  if (values.alloc) {
    console.log(`load: ${r.ok} acknowledged in ${r.secs.toFixed(1)} s = ${(r.ok / r.secs).toFixed(0)}/s`);
    const deadline = Date.now() + 20_000;
    while (!existsSync(allocFile) && Date.now() < deadline) await new Promise((res) => setTimeout(res, 100));
    if (!existsSync(allocFile)) throw new Error('the center wrote no allocation profile in 20 s');
    await new Promise((res) => setTimeout(res, 500)); // the file is written in one call; let it finish
    const a = analyseAllocations(JSON.parse(readFileSync(allocFile, 'utf8')));
    console.log(`\nmain thread: ${(a.total / r.ok / 1000).toFixed(1)} KB allocated per acknowledged request (sampled)`);
    console.log('  by stage (bytes/request):');
    for (const [name, b] of a.stages) console.log(`    ${(b / r.ok).toFixed(0).padStart(7)}  ${name}`);
    console.log('  top allocating functions (self):');
    for (const [name, b] of a.fns.slice(0, 30)) console.log(`    ${(b / r.ok).toFixed(0).padStart(7)} B  ${((100 * b) / a.total).toFixed(1).padStart(5)} %  ${name}`);
    if (values.keep) console.log(`profile kept as ${allocFile} (open it in Chrome DevTools → Memory)`);
  } else if (values['no-profile']) {
    console.log(`load: ${r.ok} acknowledged in ${r.secs.toFixed(1)} s = ${(r.ok / r.secs).toFixed(0)}/s; center process CPU ${cpuPct.toFixed(0)} % of a core, main thread ${((100 * mainSecs) / r.secs).toFixed(0)} %`);
  } else {
    await center.stop();
    center = undefined;
    const files = readdirSync(profDir).filter((f) => f.endsWith('.cpuprofile'));
    // CPU.<date>.<time>.<pid>.<thread id>.<seq>.cpuprofile: thread 0 is the main thread, workers write their own files.
    const threadOf = (f) => Number(f.split('.')[4]);
    const profiles = files.sort((a, b) => threadOf(a) - threadOf(b)).map((f) => JSON.parse(readFileSync(join(profDir, f), 'utf8')));
    console.log(`load: ${r.ok} acknowledged in ${r.secs.toFixed(1)} s = ${(r.ok / r.secs).toFixed(0)}/s; center process CPU ${cpuPct.toFixed(0)} % of a core; ${files.length} thread profile(s)`);
    // The profile spans start-up, enrollment and warm-up too; per-request figures divide the whole by every request served.
    const served = r.ok + 1000 + 200;
    if (values.keep) console.log(`profiles kept in ${profDir} (open them in Chrome DevTools → Performance)`);
    profiles.forEach((profile, i) => {
      const a = analyse(profile);
      console.log(`\n${i === 0 ? 'main thread' : `thread ${i}`}: ${(a.total / 1000).toFixed(0)} ms busy, ${(a.total / served).toFixed(1)} µs/request`);
      console.log('  by stage (µs/request):');
      for (const [name, us] of a.stages) console.log(`    ${(us / served).toFixed(1).padStart(6)}  ${name}`);
      console.log('  top self time:');
      for (const [name, us] of a.fns.slice(0, 20)) console.log(`    ${(us / served).toFixed(1).padStart(6)} µs  ${((100 * us) / a.total).toFixed(1).padStart(5)} %  ${name}`);
    });
  }
} finally {
  await center?.stop();
  // The center's journals and keys always go; with --keep the profiles are in their own directory.
  rmSync(dir, { recursive: true, force: true });
}
